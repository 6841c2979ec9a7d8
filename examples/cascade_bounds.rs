//! How much early exit with reuse could gain over static cascades on a data set, beyond the two
//! stages `search` reports: on the validation records of a static search, per budget, the best
//! cascade of two and of three static subnets (every member's cost charged) beside its reuse
//! bound (each input charged only the costliest member it ran, as if every member reused the
//! previous one's work in full; DESIGN §5). The three-member bound estimates what an S = 3
//! multi-stage net could reach if its exits were as good as static subnets of their cost (an
//! estimate from below: only a subset of the triples is tried, see below).
//!
//!   cargo run --release --example cascade_bounds -- STATE_JSON [--test SUPERNET] [BUDGET ...]
//!
//! STATE_JSON is a static search's `state-static.json`; budgets default to 2M and 3M. With
//! `--test`, the static supernet that search measured, each chosen cascade's members are measured
//! on the Fashion-MNIST test split too (BN re-estimated on as many training images as the search
//! used) and scored there at the thresholds fitted on validation. Three-member cascades take
//! their first member from the cheap members of the best pairs at the budget, their last from
//! the two most accurate subnets, and their middle from the static front between them, which
//! keeps the count of triples small.

use std::collections::HashMap;
use std::path::Path;

use enas4d::data::{DataSource, Dataset};
use enas4d::runtime::thresholds::{evaluate, fit_budget, ExitRecords, Operating};
use enas4d::search::{
    best_cascade_at, cascade_members, cascade_records, CascadeCost, Evaluator, Measured,
    SearchState, SupernetEvaluator,
};
use enas4d::space::{parse_macs, SubnetConfig};
use enas4d::train::{checkpoint, parse_device, Checkpoint};

/// The static supernet and the data to score chosen cascades on the test split.
struct TestSplit {
    ckpt: Checkpoint,
    bn_images: usize,
    train: Dataset,
    test: Dataset,
    device: burn::tensor::Device,
    cache: HashMap<String, ExitRecords>,
}

impl TestSplit {
    /// The supernet `model` and its data; BN re-estimated on `bn_images` training images (the
    /// search's own count, recorded in its state) or else the supernet's.
    fn open(model: &str, bn_images: Option<usize>) -> Self {
        let (device, _) = parse_device("cpu").expect("the CPU");
        let ckpt = checkpoint::load(Path::new(model), &device).expect("a supernet");
        let source = DataSource::parse("fashion-mnist").expect("the built-in data");
        let (train, _) = ckpt
            .header
            .config
            .split(&source.load(true).expect("training images"))
            .expect("the supernet's split");
        let test = source.load(false).expect("test images");
        TestSplit {
            bn_images: bn_images.unwrap_or(ckpt.header.config.bn_images),
            ckpt,
            train,
            test,
            device,
            cache: HashMap::new(),
        }
    }

    /// Measures `config` on the test split unless done before; its cache key.
    fn measure(&mut self, config: &SubnetConfig) -> String {
        let key = serde_json::to_string(config).expect("a config");
        if !self.cache.contains_key(&key) {
            let mut eval = SupernetEvaluator {
                net: &self.ckpt.net,
                preset: &self.ckpt.header.preset,
                bn_data: &self.train,
                bn_images: self.bn_images,
                data: &self.test,
                device: self.device.clone(),
            };
            let r = eval.measure(config).expect("test records");
            self.cache.insert(key.clone(), r);
        }
        key
    }

    /// The cascade `members` at the thresholds of `val` on the test split.
    fn score(&mut self, members: &[&Measured], cost: CascadeCost, val: &Operating) -> Operating {
        let keys: Vec<String> = members.iter().map(|m| self.measure(&m.config)).collect();
        let records: Vec<&ExitRecords> = keys.iter().map(|k| &self.cache[k]).collect();
        let (records, cum) = chain(members, &records, cost);
        evaluate(&records, &cum, &val.thresholds).expect("test records")
    }
}

/// The records and cumulative MACs of the cascade `members` (ascending cost) from each
/// member's `records` (on one split).
fn chain(
    members: &[&Measured],
    records: &[&ExitRecords],
    cost: CascadeCost,
) -> (ExitRecords, Vec<u64>) {
    let pairs: Vec<(&ExitRecords, u64)> = records
        .iter()
        .zip(members)
        .map(|(r, m)| (*r, m.last_macs()))
        .collect();
    cascade_records(&pairs, cost).expect("records of one split")
}

/// The best operating point of the cascade `members` (ascending cost) within `budget`.
fn fit_chain(members: &[&Measured], cost: CascadeCost, budget: f64) -> Option<Operating> {
    let records: Vec<&ExitRecords> = members.iter().map(|m| &m.records).collect();
    let (records, cum) = chain(members, &records, cost);
    fit_budget(&records, &cum, budget).expect("records of one split")
}

/// Prints one cascade's validation point, its test score if measured, and its members.
fn show(name: &str, op: Option<&Operating>, test: Option<Operating>, members: &[String]) {
    let shares = |op: &Operating| {
        op.exit_shares
            .iter()
            .map(|s| (s * 100.0).round() as i64)
            .collect::<Vec<_>>()
    };
    match op {
        Some(op) => {
            println!(
                "  {name:<26} val {:>6.2} % at {:>5.2} M {:?}  members {}",
                op.accuracy * 100.0,
                op.avg_macs / 1e6,
                shares(op),
                members.join(" → ")
            );
            if let Some(t) = test {
                println!(
                    "  {:<26} test {:>5.2} % at {:>5.2} M {:?}",
                    "",
                    t.accuracy * 100.0,
                    t.avg_macs / 1e6,
                    shares(&t)
                );
            }
        }
        None => println!("  {name:<26} none fits"),
    }
}

/// "two-member cascade", "three-member reuse bound" and so on.
fn name(members: &str, cost: CascadeCost) -> String {
    match cost {
        CascadeCost::Both => format!("{members}-member cascade"),
        CascadeCost::Reused => format!("{members}-member reuse bound"),
    }
}

/// A member as "resolution, MACs (validation accuracy)".
fn label(m: &Measured) -> String {
    format!(
        "{} px {:.2} M ({:.2} %)",
        m.config.resolution,
        m.last_macs() as f64 / 1e6,
        m.exit_accuracy.last().unwrap_or(&0.0) * 100.0
    )
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        eprintln!("usage: cascade_bounds STATE_JSON [--test SUPERNET] [BUDGET ...]");
        std::process::exit(2);
    }
    let path = args.remove(0);
    let state = SearchState::load(Path::new(&path)).expect("a search state");
    let bn_images = state.options.measurement.as_ref().map(|m| m.bn_images);
    let mut test = match args.iter().position(|a| a == "--test") {
        Some(i) if i + 1 < args.len() => {
            let model = args.remove(i + 1);
            args.remove(i);
            Some(TestSplit::open(&model, bn_images))
        }
        Some(_) => {
            eprintln!("--test needs the static supernet the search measured");
            std::process::exit(2);
        }
        None => None,
    };
    let budgets: Vec<f64> = if args.is_empty() {
        vec![2e6, 3e6]
    } else {
        args.iter()
            .map(|b| parse_macs(b).expect("a MACs budget"))
            .collect()
    };
    let members = cascade_members(&state.measured);
    let front = state.front().expect("a front");
    let mut by_accuracy = members.clone();
    by_accuracy.sort_by(|a, b| {
        b.exit_accuracy
            .last()
            .unwrap_or(&0.0)
            .total_cmp(a.exit_accuracy.last().unwrap_or(&0.0))
    });
    let tops = &by_accuracy[..by_accuracy.len().min(2)];
    println!(
        "{} static subnets measured on {} validation images",
        members.len(),
        members
            .first()
            .and_then(|m| m.records.correct.last())
            .map_or(0, Vec::len)
    );
    for &budget in &budgets {
        println!("budget {:.2} M (validation)", budget / 1e6);
        let mut cheap_members = Vec::new();
        for cost in [CascadeCost::Both, CascadeCost::Reused] {
            let best = best_cascade_at(&members, budget, cost).expect("records of one split");
            let find =
                |c: &SubnetConfig| *members.iter().find(|m| &m.config == c).expect("a member");
            let names = best.as_ref().map_or(Vec::new(), |p| {
                vec![label(find(&p.cheap)), label(find(&p.big))]
            });
            let scored = best.as_ref().and_then(|p| {
                let chain = [find(&p.cheap), find(&p.big)];
                test.as_mut().map(|t| t.score(&chain, cost, &p.operating))
            });
            if let Some(p) = &best {
                cheap_members.push(find(&p.cheap));
            }
            show(
                &name("two", cost),
                best.as_ref().map(|p| &p.operating),
                scored,
                &names,
            );
        }
        cheap_members.dedup_by(|a, b| a.config == b.config);
        for cost in [CascadeCost::Both, CascadeCost::Reused] {
            let mut best: Option<(Operating, [&Measured; 3])> = None;
            for &a in &cheap_members {
                for &c in tops {
                    for mid in front.iter().filter_map(|p| {
                        let m = members.iter().find(|m| m.config == p.config)?;
                        (m.last_macs() > a.last_macs() && m.last_macs() < c.last_macs())
                            .then_some(*m)
                    }) {
                        let chain = [a, mid, c];
                        if let Some(op) = fit_chain(&chain, cost, budget) {
                            if best.as_ref().is_none_or(|(b, _)| {
                                op.accuracy > b.accuracy
                                    || (op.accuracy == b.accuracy && op.avg_macs < b.avg_macs)
                            }) {
                                best = Some((op, chain));
                            }
                        }
                    }
                }
            }
            let name = name("three", cost);
            match &best {
                Some((op, chain)) => {
                    let scored = test.as_mut().map(|t| t.score(chain, cost, op));
                    let names: Vec<String> = chain.iter().map(|m| label(m)).collect();
                    show(&name, Some(op), scored, &names)
                }
                None => show(&name, None, None, &[]),
            }
        }
    }
}
