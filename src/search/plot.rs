//! The accuracy / average-MACs plot of a search: the multi-stage front beside the best static
//! (S = 1) subnets, as SVG.

use std::path::Path;

use plotters::prelude::*;

use crate::atomic::write_atomic;
use crate::error::{Error, Result};

/// A named series of (average MACs, accuracy) points.
pub struct Series<'a> {
    /// Legend label.
    pub label: &'a str,
    /// Points, ascending cost.
    pub points: &'a [(f64, f64)],
    /// Joined by a line (a front) or not (single points).
    pub line: bool,
}

/// Writes an SVG plot of `series` (MACs in millions on x, accuracy in % on y) to `path`.
pub fn plot_front(path: &Path, title: &str, series: &[Series]) -> Result<()> {
    let all: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .collect();
    if all.is_empty() {
        return Err(Error::config("plot", "no points"));
    }
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(m, a) in &all {
        x0 = x0.min(m / 1e6);
        x1 = x1.max(m / 1e6);
        y0 = y0.min(a * 100.0);
        y1 = y1.max(a * 100.0);
    }
    let (dx, dy) = ((x1 - x0).max(0.1) * 0.05, (y1 - y0).max(0.5) * 0.08);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (800, 520)).into_drawing_area();
        root.fill(&WHITE).map_err(Error::plot)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d((x0 - dx)..(x1 + dx), (y0 - dy)..(y1 + dy))
            .map_err(Error::plot)?;
        chart
            .configure_mesh()
            .x_desc("average MACs per image (millions)")
            .y_desc("accuracy (%)")
            .draw()
            .map_err(Error::plot)?;
        let colors = [RED, BLUE, GREEN, MAGENTA, BLACK];
        for (i, s) in series.iter().enumerate() {
            let color = colors[i % colors.len()];
            let pts: Vec<(f64, f64)> = s
                .points
                .iter()
                .map(|&(m, a)| (m / 1e6, a * 100.0))
                .collect();
            let drawn = if s.line {
                chart.draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
            } else {
                chart.draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())
            }
            .map_err(Error::plot)?;
            drawn
                .label(s.label)
                .legend(move |(x, y)| Circle::new((x + 10, y), 4, color.filled()));
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, 4, color.filled())))
                .map_err(Error::plot)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(Error::plot)?;
        root.present().map_err(Error::plot)?;
    }
    write_atomic(path, svg.as_bytes())
}
