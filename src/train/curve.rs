//! The training curve: one or more runs' `log.csv` and `eval.jsonl` read back and drawn as an
//! SVG against the images seen, runs one after another (a warm-started history reads as one
//! curve). Top: the training loss; bottom: the largest subnet's batch accuracy at its last exit
//! and every validation of the largest and the smallest subnet.

use std::path::Path;

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use serde::Deserialize;

use super::log::EvalRow;
use crate::atomic::write_atomic;
use crate::error::{Error, Result};

/// One logged training step.
#[derive(Clone, Debug, PartialEq)]
pub struct StepRow {
    /// Steps done.
    pub step: usize,
    /// The step's loss.
    pub loss: f64,
    /// The largest subnet's accuracy on the step's batch, per exit.
    pub accuracy: Vec<f64>,
}

/// One run's logs.
#[derive(Clone, Debug)]
pub struct RunLog {
    /// The run's name (its folder's name).
    pub name: String,
    /// Images per step (`batch` of the run's `config.json`).
    pub batch: usize,
    /// Whether the run trained one subnet alone (`alone` in its `config.json`).
    pub alone: bool,
    /// Every logged step, in order.
    pub steps: Vec<StepRow>,
    /// Every validation.
    pub evals: Vec<EvalRow>,
}

impl RunLog {
    /// Images the run trained on: its last logged step times its batch.
    pub fn images(&self) -> usize {
        self.steps.last().map_or(0, |s| s.step) * self.batch
    }
}

#[derive(Deserialize)]
struct BatchOnly {
    batch: usize,
    #[serde(default)]
    alone: Option<serde::de::IgnoredAny>,
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::io(path, e))
}

fn parse_steps(path: &Path, text: &str) -> Result<Vec<StepRow>> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .ok_or_else(|| Error::data(path, "empty (no header)"))?
        .split(',')
        .collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .ok_or_else(|| Error::data(path, format!("no `{name}` column")))
    };
    let (step_col, loss_col) = (col("step")?, col("loss")?);
    let acc_cols: Vec<usize> = (0..header.len())
        .filter(|&i| header[i].starts_with("acc_exit"))
        .collect();
    if acc_cols.is_empty() {
        return Err(Error::data(path, "no `acc_exit` column"));
    }
    let mut rows: Vec<StepRow> = Vec::new();
    for (i, line) in lines.enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let at = |reason: String| Error::data(path, format!("line {}: {reason}", i + 2));
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != header.len() {
            return Err(at(format!(
                "{} fields, the header has {}",
                fields.len(),
                header.len()
            )));
        }
        let num = |c: usize| {
            fields[c]
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| at(format!("`{}` is not a number", fields[c])))
        };
        let step = fields[step_col]
            .parse::<usize>()
            .map_err(|_| at(format!("step `{}` is not a count", fields[step_col])))?;
        if rows.last().is_some_and(|r| r.step >= step) {
            return Err(at(format!("step {step} does not follow the previous one")));
        }
        rows.push(StepRow {
            step,
            loss: num(loss_col)?,
            accuracy: acc_cols.iter().map(|&c| num(c)).collect::<Result<_>>()?,
        });
    }
    Ok(rows)
}

/// Reads a run folder written by training: `config.json` (for the batch size), `log.csv` and
/// `eval.jsonl`.
pub fn read_run(dir: &Path) -> Result<RunLog> {
    let config_path = dir.join("config.json");
    let BatchOnly { batch, alone } = serde_json::from_str(&read(&config_path)?)
        .map_err(|e| Error::data(&config_path, e.to_string()))?;
    if batch == 0 {
        return Err(Error::data(&config_path, "batch is 0"));
    }
    let log_path = dir.join("log.csv");
    let steps = parse_steps(&log_path, &read(&log_path)?)?;
    let eval_path = dir.join("eval.jsonl");
    let evals = read(&eval_path)?
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str::<EvalRow>(l)
                .map_err(|e| Error::data(&eval_path, format!("line {}: {e}", i + 1)))
        })
        .collect::<Result<Vec<_>>>()?;
    let name = dir
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| dir.display().to_string());
    Ok(RunLog {
        name,
        batch,
        alone: alone.is_some(),
        steps,
        evals,
    })
}

/// The curves' points, images seen (millions) on x.
#[derive(Debug, Default)]
pub struct CurvePoints {
    /// Training loss, averaged over windows of steps.
    pub loss: Vec<(f64, f64)>,
    /// The largest subnet's (alone: the subnet's) batch accuracy at the last exit (%),
    /// averaged likewise.
    pub batch_accuracy: Vec<(f64, f64)>,
    /// The legend of `batch_accuracy`.
    pub batch_label: &'static str,
    /// Validation accuracy (%) per series: `(label, points)`, e.g. `largest, exit 3`.
    pub validation: Vec<(String, Vec<(f64, f64)>)>,
    /// Where each run after the first starts, with its name.
    pub boundaries: Vec<(f64, String)>,
}

/// Lays `runs` end to end and averages the step rows over windows of about `window_images`
/// images (at least one step).
pub fn curve_points(runs: &[RunLog], window_images: usize) -> CurvePoints {
    let mut out = CurvePoints {
        batch_label: if !runs.is_empty() && runs.iter().all(|r| r.alone) {
            "the subnet, last exit, training batches"
        } else {
            "largest, last exit, training batches"
        },
        ..CurvePoints::default()
    };
    let mut offset = 0usize;
    for (r, run) in runs.iter().enumerate() {
        if r > 0 {
            out.boundaries.push((offset as f64 / 1e6, run.name.clone()));
        }
        let window = (window_images / run.batch).max(1);
        for chunk in run.steps.chunks(window) {
            let n = chunk.len() as f64;
            let x = (offset + chunk[chunk.len() - 1].step * run.batch) as f64 / 1e6;
            out.loss
                .push((x, chunk.iter().map(|s| s.loss).sum::<f64>() / n));
            let last = |s: &StepRow| s.accuracy.last().copied().unwrap_or(0.0);
            out.batch_accuracy
                .push((x, 100.0 * chunk.iter().map(last).sum::<f64>() / n));
        }
        for e in &run.evals {
            let x = (offset + e.step * run.batch) as f64 / 1e6;
            let exits = e.accuracy.len();
            // The first and the last exit are enough to read the curve.
            let picks = match exits {
                0 => vec![],
                1 => vec![0],
                _ if e.subnet == "largest" => vec![0, exits - 1],
                _ => vec![exits - 1],
            };
            for ex in picks {
                let label = format!("val, {}, exit {}", e.subnet, ex + 1);
                let point = (x, 100.0 * e.accuracy[ex]);
                match out.validation.iter_mut().find(|(l, _)| *l == label) {
                    Some((_, pts)) => pts.push(point),
                    None => out.validation.push((label, vec![point])),
                }
            }
        }
        offset += run.images();
    }
    out
}

fn span(points: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = points.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let pad = ((hi - lo) * 0.06).max(1e-3);
    (lo - pad, hi + pad)
}

/// Draws a vertical line where each run starts; `named` also writes the run's name by it.
fn draw_boundaries<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    boundaries: &[(f64, String)],
    (y0, y1): (f64, f64),
    named: bool,
) -> Result<()> {
    let orange = RGBColor(230, 140, 40);
    chart
        .draw_series(
            boundaries
                .iter()
                .map(|(x, _)| PathElement::new(vec![(*x, y0), (*x, y1)], orange.stroke_width(1))),
        )
        .map_err(Error::plot)?;
    if named {
        let y = y1 - (y1 - y0) * 0.02;
        chart
            .draw_series(boundaries.iter().map(|(x, name)| {
                Text::new(format!(" {name}"), (*x, y), ("sans-serif", 11).into_font())
            }))
            .map_err(Error::plot)?;
    }
    Ok(())
}

fn draw_panels<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    pts: &CurvePoints,
) -> Result<()> {
    root.fill(&WHITE).map_err(Error::plot)?;
    let root = root
        .titled(title, ("sans-serif", 20))
        .map_err(Error::plot)?;
    let (top, bottom) = root.split_vertically(root.dim_in_pixel().1 * 2 / 5);
    let (x0, x1) = span(pts.loss.iter().map(|p| p.0).chain([0.0]));
    let x_range = 0.0f64.max(x0)..x1;

    let (l0, l1) = span(pts.loss.iter().map(|p| p.1));
    let mut chart = ChartBuilder::on(&top)
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(56)
        .build_cartesian_2d(x_range.clone(), l0..l1)
        .map_err(Error::plot)?;
    chart
        .configure_mesh()
        .y_desc("training loss")
        .light_line_style(WHITE)
        .draw()
        .map_err(Error::plot)?;
    draw_boundaries(&mut chart, &pts.boundaries, (l0, l1), true)?;
    chart
        .draw_series(LineSeries::new(pts.loss.clone(), BLACK.stroke_width(1)))
        .map_err(Error::plot)?;

    let accs = pts.batch_accuracy.iter().map(|p| p.1).chain(
        pts.validation
            .iter()
            .flat_map(|(_, v)| v.iter().map(|p| p.1)),
    );
    let (a0, a1) = span(accs);
    let mut chart = ChartBuilder::on(&bottom)
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d(x_range, a0..a1)
        .map_err(Error::plot)?;
    chart
        .configure_mesh()
        .x_desc("images seen (millions); orange lines: a new run starts")
        .y_desc("accuracy (%)")
        .light_line_style(WHITE)
        .draw()
        .map_err(Error::plot)?;
    draw_boundaries(&mut chart, &pts.boundaries, (a0, a1), false)?;
    let grey = RGBColor(150, 150, 150);
    chart
        .draw_series(LineSeries::new(
            pts.batch_accuracy.clone(),
            grey.stroke_width(1),
        ))
        .map_err(Error::plot)?
        .label(pts.batch_label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], grey.stroke_width(2)));
    let colors = [BLUE, CYAN, RED, MAGENTA, GREEN];
    for (i, (label, points)) in pts.validation.iter().enumerate() {
        let color = colors[i % colors.len()];
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(1)))
            .map_err(Error::plot)?;
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled())))
            .map_err(Error::plot)?
            .label(label.as_str())
            .legend(move |(x, y)| Circle::new((x + 10, y), 4, color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(Error::plot)?;
    root.present().map_err(Error::plot)
}

/// Writes the training curve of `runs` (laid end to end) as an SVG to `path`.
pub fn plot_curve(path: &Path, title: &str, runs: &[RunLog]) -> Result<()> {
    let total: usize = runs.iter().map(RunLog::images).sum();
    if total == 0 {
        return Err(Error::config("curve", "the runs have no logged steps"));
    }
    let pts = curve_points(runs, (total / 300).max(1));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 700)).into_drawing_area();
        draw_panels(&root, title, &pts)?;
    }
    write_atomic(path, svg.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(name: &str, batch: usize, steps: &[(usize, f64, f64)]) -> RunLog {
        RunLog {
            name: name.into(),
            batch,
            alone: false,
            steps: steps
                .iter()
                .map(|&(step, loss, acc)| StepRow {
                    step,
                    loss,
                    accuracy: vec![acc / 2.0, acc],
                })
                .collect(),
            evals: Vec::new(),
        }
    }

    #[test]
    fn parses_a_log_and_names_bad_lines() {
        let p = Path::new("log.csv");
        let text = "step,phase,lr,loss,acc_exit1,acc_exit2,images_per_s,elapsed_s\n\
                    1,full,1e-3,2.5,0.25,0.5,10.0,1.0\n\
                    2,full,1e-3,2.0,0.5,0.75,10.0,2.0\n";
        let rows = parse_steps(p, text).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].loss, 2.0);
        assert_eq!(rows[1].accuracy, vec![0.5, 0.75]);
        let bad = text.replace("2,full,1e-3,2.0", "2,full,1e-3,NaN");
        let e = parse_steps(p, &bad).unwrap_err().to_string();
        assert!(e.contains("line 3"), "{e}");
        let short = text.replace(",10.0,2.0", "");
        assert!(parse_steps(p, &short)
            .unwrap_err()
            .to_string()
            .contains("fields"));
        let back = text.replace("2,full", "1,full");
        assert!(parse_steps(p, &back).is_err());
        assert!(parse_steps(p, "").is_err());
    }

    #[test]
    fn runs_are_laid_end_to_end_and_averaged() {
        let a = run("a", 10, &[(1, 4.0, 0.2), (2, 2.0, 0.4), (3, 3.0, 0.6)]);
        let b = run("b", 20, &[(1, 1.0, 0.8), (2, 3.0, 1.0)]);
        let pts = curve_points(&[a, b], 20);
        // Run a: windows of 2 steps; run b: windows of 1 step, after a's 30 images.
        let xs: Vec<f64> = pts.loss.iter().map(|p| p.0 * 1e6).collect();
        let ys: Vec<f64> = pts.loss.iter().map(|p| p.1).collect();
        assert_eq!(xs.len(), 4);
        for (x, want) in xs.iter().zip([20.0, 30.0, 50.0, 70.0]) {
            assert!((x - want).abs() < 1e-6, "{xs:?}");
        }
        assert_eq!(ys, vec![3.0, 3.0, 1.0, 3.0]);
        assert!((pts.batch_accuracy[0].1 - 30.0).abs() < 1e-9);
        assert_eq!(pts.boundaries.len(), 1);
        assert!((pts.boundaries[0].0 * 1e6 - 30.0).abs() < 1e-6);
        assert!(pts.batch_label.starts_with("largest"));
    }

    #[test]
    fn an_alone_run_is_labelled_as_the_subnet() {
        let mut a = run("a", 10, &[(1, 4.0, 0.2)]);
        a.alone = true;
        assert!(curve_points(std::slice::from_ref(&a), 10)
            .batch_label
            .starts_with("the subnet"));
        let b = run("b", 10, &[(1, 4.0, 0.2)]);
        assert!(curve_points(&[a, b], 10).batch_label.starts_with("largest"));
    }

    #[test]
    fn reads_whether_a_run_trained_one_subnet_alone() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("log.csv"),
            "step,phase,lr,loss,acc_exit1,images_per_s,elapsed_s\n1,full,1e-3,2.5,0.25,10.0,1.0\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("eval.jsonl"), "").unwrap();
        for (config, alone) in [
            (r#"{"batch": 8}"#, false),
            (r#"{"batch": 8, "alone": {"p": []}}"#, true),
        ] {
            std::fs::write(dir.path().join("config.json"), config).unwrap();
            let run = read_run(dir.path()).unwrap();
            assert_eq!((run.batch, run.alone), (8, alone));
        }
    }
}
