//! Dense f32 matrix products on the `gemm` crate (native builds), behind a bounds-checked view:
//! the training ops' masked 1×1 conv and the stage-wise CPU runtime's 1×1 convs.

use gemm::{gemm, Parallelism};

/// A strided read-only matrix view.
#[derive(Clone, Copy)]
pub(crate) struct View<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> View<'a> {
    /// Row-major `rows × cols` block of `data` starting at `offset`, rows `ld` apart.
    pub(crate) fn block(
        data: &'a [f32],
        offset: usize,
        rows: usize,
        cols: usize,
        ld: usize,
    ) -> Self {
        View {
            data: &data[offset.min(data.len())..],
            rows,
            cols,
            row_stride: ld,
            col_stride: 1,
        }
    }

    /// The transpose.
    pub(crate) fn t(self) -> Self {
        View {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }

    /// Whether every element lies inside `data`.
    fn fits(&self) -> bool {
        self.rows == 0
            || self.cols == 0
            || (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride
                < self.data.len()
    }
}

/// `dst[rows × cols, row-major, ld]` (+)= `a · b`. Panics if a view runs past its slice (a bug
/// in the caller's shapes, checked before the raw-pointer call).
pub(crate) fn matmul(dst: &mut [f32], ld: usize, accumulate: bool, a: View, b: View) {
    let (m, n, k) = (a.rows, b.cols, a.cols);
    assert_eq!(b.rows, k, "inner dimensions");
    assert!(a.fits() && b.fits(), "gemm operand out of bounds");
    if m == 0 || n == 0 {
        return;
    }
    assert!((m - 1) * ld + n <= dst.len(), "gemm output out of bounds");
    if k == 0 {
        if !accumulate {
            for r in 0..m {
                dst[r * ld..r * ld + n].fill(0.0);
            }
        }
        return;
    }
    // SAFETY: all three views were checked to lie inside their slices above; `dst` is borrowed
    // mutably, so it aliases neither operand.
    unsafe {
        gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            ld as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            Parallelism::None,
        );
    }
}
