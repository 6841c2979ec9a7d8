//! Data-set loaders on small files written here, on the built-in Fashion-MNIST, and on bad
//! input (truncated, wrong magic, undecodable).

use std::io::Write;
use std::path::Path;

use enas4d::data::{
    fashion_mnist, load_cifar, load_folder, load_idx, to_batch, Augment, FASHION_MNIST_DIR,
};
use enas4d::Error;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn classes(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("c{i}")).collect()
}

fn write_idx(dir: &Path, n: usize, h: usize, w: usize, gz: bool) -> (Vec<u8>, Vec<u8>) {
    let mut rng = SmallRng::seed_from_u64(5);
    let pixels: Vec<u8> = (0..n * h * w).map(|_| rng.random()).collect();
    let labels: Vec<u8> = (0..n).map(|i| (i % 3) as u8).collect();
    let mut img = idx_bytes(&[n as u32, h as u32, w as u32], &pixels);
    let mut lab = idx_bytes(&[n as u32], &labels);
    if gz {
        img = gzip(&img);
        lab = gzip(&lab);
    }
    std::fs::write(dir.join("images"), img).unwrap();
    std::fs::write(dir.join("labels"), lab).unwrap();
    (pixels, labels)
}

#[test]
fn should_load_idx_raw_and_gzipped() {
    for gz in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let (pixels, labels) = write_idx(dir.path(), 7, 5, 3, gz);
        let ds = load_idx(
            &dir.path().join("images"),
            &dir.path().join("labels"),
            classes(3),
        )
        .unwrap();
        assert_eq!((ds.len(), ds.channels, ds.height, ds.width), (7, 1, 5, 3));
        assert_eq!(ds.pixels, pixels);
        assert_eq!(
            ds.labels,
            labels.iter().map(|&l| u32::from(l)).collect::<Vec<_>>()
        );
    }
}

#[test]
fn should_reject_bad_idx_files() {
    let dir = tempfile::tempdir().unwrap();
    let (img, lab) = (dir.path().join("images"), dir.path().join("labels"));
    write_idx(dir.path(), 4, 2, 2, false);
    let full = std::fs::read(&img).unwrap();
    std::fs::write(&img, &full[..full.len() - 1]).unwrap();
    match load_idx(&img, &lab, classes(3)) {
        Err(Error::Data { reason, .. }) => assert!(reason.contains("need 16 bytes"), "{reason}"),
        other => panic!("truncated file: {other:?}"),
    }
    std::fs::write(&img, b"\x89PNG....").unwrap();
    assert!(load_idx(&img, &lab, classes(3))
        .unwrap_err()
        .to_string()
        .contains("bad magic"));
    std::fs::write(&img, &full).unwrap();
    // Labels 0..3 need three classes.
    assert!(load_idx(&img, &lab, classes(2))
        .unwrap_err()
        .to_string()
        .contains("label 2"));
    // A header claiming 2³² × … bytes must fail on size, not allocate.
    std::fs::write(&img, idx_bytes(&[u32::MAX, u32::MAX, u32::MAX], &[1, 2, 3])).unwrap();
    assert!(load_idx(&img, &lab, classes(3)).is_err());
    std::fs::write(&img, &gzip(&full)[..20]).unwrap();
    assert!(load_idx(&img, &lab, classes(3))
        .unwrap_err()
        .to_string()
        .contains("gzip"));
    assert!(matches!(
        load_idx(&dir.path().join("missing"), &lab, classes(3)),
        Err(Error::Io { .. })
    ));
}

#[test]
fn should_load_the_builtin_fashion_mnist() {
    // Installed by scripts/setup.sh (Debian's dataset-fashion-mnist).
    let dir = Path::new(FASHION_MNIST_DIR);
    let train = fashion_mnist(dir, true).unwrap();
    let test = fashion_mnist(dir, false).unwrap();
    assert_eq!((train.len(), test.len()), (60_000, 10_000));
    assert_eq!(
        (train.height, train.width, train.classes.len()),
        (28, 28, 10)
    );
    // Fashion-MNIST is balanced: 6000 / 1000 images per class.
    for (ds, per) in [(&train, 6000), (&test, 1000)] {
        let mut counts = [0usize; 10];
        ds.labels.iter().for_each(|&l| counts[l as usize] += 1);
        assert_eq!(counts, [per; 10]);
    }
    let (fit, val) = train.split_validation(5000, 42).unwrap();
    assert_eq!((fit.len(), val.len()), (55_000, 5000));
}

#[test]
fn should_split_validation_deterministically_and_disjointly() {
    let dir = tempfile::tempdir().unwrap();
    write_idx(dir.path(), 50, 2, 2, false);
    // Images made unique by their index so that the split can be traced.
    let mut ds = load_idx(
        &dir.path().join("images"),
        &dir.path().join("labels"),
        classes(3),
    )
    .unwrap();
    for i in 0..50 {
        ds.pixels[i * 4] = i as u8;
    }
    let (t1, v1) = ds.split_validation(10, 7).unwrap();
    let (t2, v2) = ds.split_validation(10, 7).unwrap();
    let (_, v3) = ds.split_validation(10, 8).unwrap();
    assert_eq!((t1.clone(), v1.clone()), (t2, v2));
    assert_ne!(v1, v3);
    let mut seen: Vec<u8> = t1
        .pixels
        .chunks(4)
        .chain(v1.pixels.chunks(4))
        .map(|c| c[0])
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..50).collect::<Vec<u8>>());
    assert!(ds.split_validation(50, 1).is_err());
}

#[test]
fn should_load_cifar10_and_cifar100_binaries() {
    let dir = tempfile::tempdir().unwrap();
    let record = |label: u8, fill: u8| {
        let mut r = vec![label];
        r.extend((0..3072).map(|i| fill.wrapping_add((i / 1024) as u8)));
        r
    };
    for i in 1..=5 {
        std::fs::write(
            dir.path().join(format!("data_batch_{i}.bin")),
            [record(i, 10), record(9, 20)].concat(),
        )
        .unwrap();
    }
    std::fs::write(dir.path().join("test_batch.bin"), record(3, 1)).unwrap();
    let names: String = (0..10).map(|i| format!("name{i}\n")).collect();
    std::fs::write(dir.path().join("batches.meta.txt"), names).unwrap();
    let train = load_cifar(dir.path(), true).unwrap();
    assert_eq!((train.len(), train.channels, train.height), (10, 3, 32));
    assert_eq!(&train.labels[..2], &[1, 9]);
    assert_eq!(train.classes[9], "name9");
    // R, G, B planes of the first image.
    assert_eq!(
        (
            train.image(0)[0],
            train.image(0)[1024],
            train.image(0)[2048]
        ),
        (10, 11, 12)
    );
    assert_eq!(load_cifar(dir.path(), false).unwrap().labels, vec![3]);
    std::fs::write(dir.path().join("test_batch.bin"), &record(3, 1)[..3000]).unwrap();
    assert!(load_cifar(dir.path(), false)
        .unwrap_err()
        .to_string()
        .contains("records"));

    let c100 = tempfile::tempdir().unwrap();
    let mut rec = vec![4, 77];
    rec.extend(vec![5u8; 3072]);
    std::fs::write(c100.path().join("test.bin"), &rec).unwrap();
    let test = load_cifar(c100.path(), false).unwrap();
    assert_eq!((test.labels.clone(), test.classes.len()), (vec![77], 100));
}

#[test]
fn should_load_image_folders_of_any_size_and_colour_type() {
    let dir = tempfile::tempdir().unwrap();
    for class in ["cat", "dog"] {
        std::fs::create_dir(dir.path().join(class)).unwrap();
    }
    image::GrayImage::from_pixel(7, 5, image::Luma([200]))
        .save(dir.path().join("cat/a.png"))
        .unwrap();
    image::RgbaImage::from_pixel(40, 30, image::Rgba([10, 20, 30, 128]))
        .save(dir.path().join("cat/b.PNG"))
        .unwrap();
    image::RgbImage::from_pixel(3, 90, image::Rgb([255, 0, 0]))
        .save(dir.path().join("dog/c.jpg"))
        .unwrap();
    std::fs::write(dir.path().join("dog/notes.txt"), "ignored").unwrap();
    let ds = load_folder(dir.path(), 8, 8).unwrap();
    assert_eq!(ds.classes, vec!["cat", "dog"]);
    assert_eq!(ds.labels, vec![0, 0, 1]);
    assert_eq!((ds.channels, ds.height, ds.width), (3, 8, 8));
    assert!(
        ds.image(0).iter().all(|&v| v == 200),
        "grey becomes three equal planes"
    );
    assert_eq!(
        (ds.image(1)[0], ds.image(1)[64], ds.image(1)[128]),
        (10, 20, 30)
    );
    let red = ds.image(2);
    assert!(
        red[..64].iter().all(|&v| v > 240) && red[64..].iter().all(|&v| v < 15),
        "JPEG red"
    );

    std::fs::write(
        dir.path().join("dog/broken.png"),
        b"\x89PNG\r\n\x1a\nnot really",
    )
    .unwrap();
    let err = load_folder(dir.path(), 8, 8).unwrap_err().to_string();
    assert!(err.contains("broken.png"), "{err}");
    assert!(load_folder(tempfile::tempdir().unwrap().path(), 8, 8).is_err());
}

#[test]
fn should_batch_resize_and_augment() {
    let dir = tempfile::tempdir().unwrap();
    write_idx(dir.path(), 6, 28, 28, true);
    let ds = load_idx(
        &dir.path().join("images"),
        &dir.path().join("labels"),
        classes(3),
    )
    .unwrap();
    let plain = to_batch(&ds, &[0, 5], 32, None).unwrap();
    assert_eq!(plain.len(), 2 * 3 * 32 * 32);
    assert!(plain.iter().all(|v| (-1.0..=1.0).contains(v)));
    assert_eq!(
        &plain[..1024],
        &plain[1024..2048],
        "grey replicated to 3 channels"
    );
    let same = to_batch(&ds, &[0, 5], 28, None).unwrap();
    assert_eq!(same[0], f32::from(ds.image(0)[0]) / 255.0 * 2.0 - 1.0);
    let mut rng = SmallRng::seed_from_u64(3);
    let none = Augment {
        pad: 0,
        flip: false,
    };
    assert_eq!(
        to_batch(&ds, &[0, 5], 32, Some((&none, &mut rng))).unwrap(),
        plain
    );
    let aug = to_batch(&ds, &[0, 5], 32, Some((&Augment::default(), &mut rng))).unwrap();
    assert_eq!(aug.len(), plain.len());
    assert_ne!(aug, plain);
}
