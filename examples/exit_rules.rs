//! Which exit rule serves a searched supernet best: each exit's own softmax (today's rule), the
//! same with a per-exit temperature fitted on validation (negative log-likelihood), and the
//! average of the softmax outputs of exits ≤ s (with and without the temperatures). For every
//! distinct subnet of a search's validation front, thresholds are fitted on the validation
//! split per budget and the budget's best subnet is scored on the test split.
//!
//!   cargo run --release --example exit_rules -- SUPERNET FRONT_JSON [VAL_IMAGES]
//!
//! FRONT_JSON is a search's `front.json` (its `front` and `budgets` are read).

use std::collections::BTreeSet;

use enas4d::data::DataSource;
use enas4d::runtime::thresholds::{evaluate, fit_budget, ExitRecords};
use enas4d::space::{count, Plan, SubnetConfig};
use enas4d::train::{calibrate, checkpoint, exit_logits, parse_device};

/// Softmax of every row of `logits / t`.
fn softmax_rows(logits: &[f32], classes: usize, t: f32) -> Vec<f32> {
    let mut out = Vec::with_capacity(logits.len());
    for row in logits.chunks(classes) {
        let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        let e: Vec<f32> = row.iter().map(|&x| ((x - m) / t).exp()).collect();
        let sum: f32 = e.iter().sum();
        out.extend(e.iter().map(|v| v / sum));
    }
    out
}

/// Mean negative log-likelihood of `labels` under softmax(logits / t).
fn nll(logits: &[f32], classes: usize, labels: &[u32], t: f32) -> f64 {
    let p = softmax_rows(logits, classes, t);
    let n = labels.len() as f64;
    p.chunks(classes)
        .zip(labels)
        .map(|(row, &l)| -(f64::from(row[l as usize]).max(1e-12)).ln())
        .sum::<f64>()
        / n
}

/// The temperature in [0.25, 4] (log grid) with the least validation NLL.
fn fit_temperature(logits: &[f32], classes: usize, labels: &[u32]) -> f32 {
    (0..=48)
        .map(|i| 0.25f32 * 16f32.powf(i as f32 / 48.0))
        .min_by(|a, b| {
            nll(logits, classes, labels, *a).total_cmp(&nll(logits, classes, labels, *b))
        })
        .unwrap_or(1.0)
}

/// Records under a rule: per-exit temperatures `t`, and whether exit s averages the
/// probabilities of exits ≤ s.
fn records(
    logits: &[Vec<f32>],
    classes: usize,
    labels: &[u32],
    t: &[f32],
    average: bool,
) -> ExitRecords {
    let probs: Vec<Vec<f32>> = logits
        .iter()
        .zip(t)
        .map(|(l, &t)| softmax_rows(l, classes, t))
        .collect();
    let mut confidence = Vec::new();
    let mut correct = Vec::new();
    let mut sum = vec![0.0f32; probs[0].len()];
    for (s, p) in probs.iter().enumerate() {
        let row_src: Vec<f32> = if average {
            for (a, b) in sum.iter_mut().zip(p) {
                *a += b;
            }
            sum.iter().map(|v| v / (s + 1) as f32).collect()
        } else {
            p.clone()
        };
        let (c, k): (Vec<f32>, Vec<bool>) = row_src
            .chunks(classes)
            .zip(labels)
            .map(|(row, &l)| {
                let (mut best, mut arg) = (f32::NEG_INFINITY, 0);
                for (i, &v) in row.iter().enumerate() {
                    if v > best {
                        best = v;
                        arg = i;
                    }
                }
                (best, arg == l as usize)
            })
            .unzip();
        confidence.push(c);
        correct.push(k);
    }
    ExitRecords {
        confidence,
        correct,
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: exit_rules SUPERNET FRONT_JSON [VAL_IMAGES]";
    let path = args.next().ok_or(usage)?;
    let front_path = args.next().ok_or(usage)?;
    let val_images: usize = args.next().map_or(Ok(5000), |n| n.parse())?;
    let (device, _) = parse_device("cpu")?;
    let ckpt = checkpoint::load(std::path::Path::new(&path), &device)?;
    let source = DataSource::parse("fashion-mnist")?;
    let (train, val) = ckpt.header.config.split(&source.load(true)?)?;
    let val = val.subset(&(0..val_images.min(val.len())).collect::<Vec<_>>());
    let test = source.load(false)?;
    let preset = ckpt.header.preset.clone();
    let front: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&front_path)?)?;
    let mut configs = BTreeSet::new();
    for p in front["front"].as_array().ok_or("no front")? {
        configs.insert(serde_json::to_string(&p["config"])?);
    }
    let budgets: Vec<f64> = front["budgets"]
        .as_array()
        .ok_or("no budgets")?
        .iter()
        .filter_map(|b| b["budget"].as_f64())
        .collect();
    let rules = ["plain", "temperature", "average", "average + temperature"];
    // best[rule][budget] = (val accuracy, test accuracy, test avg MACs)
    let mut best = vec![vec![None::<(f64, f64, f64)>; budgets.len()]; rules.len()];
    eprintln!("{} subnets", configs.len());
    for (i, c) in configs.iter().enumerate() {
        let config: SubnetConfig = serde_json::from_str(c)?;
        let plan = Plan::new(&preset, &config)?;
        let cum = count(&preset, &config)?.cum_macs;
        let stats = calibrate(
            &ckpt.net,
            &plan,
            &train,
            ckpt.header.config.bn_images,
            &device,
        )?;
        let lv = exit_logits(&ckpt.net, &plan, &stats, &val, &device)?;
        let lt = exit_logits(&ckpt.net, &plan, &stats, &test, &device)?;
        let k = plan.classes;
        let temps: Vec<f32> = lv
            .iter()
            .map(|l| fit_temperature(l, k, &val.labels))
            .collect();
        let ones = vec![1.0; temps.len()];
        eprintln!("subnet {}/{}: temperatures {temps:?}", i + 1, configs.len());
        for (r, (t, avg)) in [
            (&ones, false),
            (&temps, false),
            (&ones, true),
            (&temps, true),
        ]
        .into_iter()
        .enumerate()
        {
            let rv = records(&lv, k, &val.labels, t, avg);
            let rt = records(&lt, k, &test.labels, t, avg);
            for (b, &budget) in budgets.iter().enumerate() {
                if let Some(op) = fit_budget(&rv, &cum, budget)? {
                    if best[r][b].is_none_or(|(v, _, _)| op.accuracy > v) {
                        let scored = evaluate(&rt, &cum, &op.thresholds)?;
                        best[r][b] = Some((op.accuracy, scored.accuracy, scored.avg_macs));
                    }
                }
            }
        }
    }
    println!(
        "| rule | {} |",
        budgets
            .iter()
            .map(|b| format!("{:.1} M", b / 1e6))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    println!("| --- |{}", " --- |".repeat(budgets.len()));
    for (r, name) in rules.iter().enumerate() {
        let cells: Vec<String> = best[r]
            .iter()
            .map(|x| match x {
                Some((v, t, m)) => format!(
                    "{:.2} % ({:.2} % val) @ {:.2} M",
                    t * 100.0,
                    v * 100.0,
                    m / 1e6
                ),
                None => "—".into(),
            })
            .collect();
        println!("| {name} | {} |", cells.join(" | "));
    }
    Ok(())
}
