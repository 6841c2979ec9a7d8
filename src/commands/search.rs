//! `enas4d search`: evolutionary search of the shipped (or any) supernet under average-MACs
//! budgets, beside the static (S = 1) baseline; writes front.json and pareto.svg.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use clap::Args;
use enas4d::data::{DataSource, Dataset};
use enas4d::runtime::thresholds::{evaluate, ExitRecords};
use enas4d::search::{
    best_cascade_at, cascade_front, cascade_members, cascade_records, plot_front, search,
    BudgetResult, CascadeCost, CascadePoint, CurvePoint, Front, FrontPoint, Measurement, Scored,
    ScoredCascade, SearchOptions, SearchState, Series, SupernetEvaluator, TestCurves,
};
use enas4d::space::{count, Preset, SubnetConfig};
use enas4d::train::{checkpoint, Checkpoint};

/// Arguments of `enas4d search`.
#[derive(Args)]
pub struct SearchArgs {
    /// Multi-stage supernet (default: the shipped one).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Static (S = 1) supernet for the baseline; `none` skips it.
    #[arg(long, default_value = super::DEFAULT_STATIC)]
    static_model: String,
    /// Average-MACs budgets, e.g. `--budget 3M --budget 4.5M` (default: four budgets across
    /// the supernet's range, which traces the Pareto front).
    #[arg(long, value_parser = super::parse_budget)]
    budget: Vec<f64>,
    /// Output folder: state.json (resumable), front.json, pareto.svg.
    #[arg(long, default_value = "runs/search")]
    out: PathBuf,
    /// Continue the search saved in --out, with its settings; a larger --generations extends
    /// it, any other changed setting is refused.
    #[arg(long)]
    resume: bool,
    /// Subnets measured before evolution (the largest, the smallest, the largest at each
    /// choice of stage cuts and resolution, the largest under a shallow stage 1, then random
    /// ones).
    #[arg(long, default_value_t = 24)]
    initial: usize,
    /// Generations of evolution.
    #[arg(long, default_value_t = 8)]
    generations: usize,
    /// Validation images each subnet is measured on.
    #[arg(long, default_value_t = 2000)]
    val_images: usize,
    /// Test images the chosen nets and the curves are scored on (default: the whole test
    /// split; at least 1).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    test_images: Option<u64>,
    /// Training images for BN re-estimation per subnet (default: each supernet's own
    /// `bn_images`, the number `eval` and `export` use, so that the search measures the nets
    /// `export` writes).
    #[arg(long)]
    bn_images: Option<usize>,
    /// Data: fashion-mnist (built in), idx:DIR, cifar:DIR or folder:DIR[:SIZE].
    #[arg(long, default_value = "fashion-mnist")]
    data: String,
    /// Where it runs.
    #[arg(long, value_enum, default_value_t = super::DeviceChoice::Cpu)]
    device: super::DeviceChoice,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
}

/// Test-split records per subnet, measured once each.
struct TestRecords<'a> {
    ctx: &'a Context,
    test: &'a Dataset,
    bn_images: usize,
    device: &'a burn::tensor::Device,
    cache: HashMap<String, ExitRecords>,
}

impl<'a> TestRecords<'a> {
    fn new(
        ctx: &'a Context,
        test: &'a Dataset,
        bn_images: usize,
        device: &'a burn::tensor::Device,
    ) -> Self {
        TestRecords {
            ctx,
            test,
            bn_images,
            device,
            cache: HashMap::new(),
        }
    }

    /// Measures `config` on the test split unless done before; its cache key.
    fn measure(&mut self, config: &SubnetConfig) -> Result<String, Box<dyn std::error::Error>> {
        let key = serde_json::to_string(config)?;
        if !self.cache.contains_key(&key) {
            let mut eval = SupernetEvaluator {
                net: &self.ctx.ckpt.net,
                preset: &self.ctx.ckpt.header.preset,
                bn_data: &self.ctx.train,
                bn_images: self.bn_images,
                data: self.test,
                device: self.device.clone(),
            };
            let records = enas4d::search::Evaluator::measure(&mut eval, config)?;
            self.cache.insert(key.clone(), records);
        }
        Ok(key)
    }

    /// `point` with its validation thresholds scored on the test split.
    fn score(&mut self, point: &FrontPoint) -> Result<Scored, Box<dyn std::error::Error>> {
        let key = self.measure(&point.config)?;
        let cum = count(&self.ctx.ckpt.header.preset, &point.config)?.cum_macs;
        Ok(Scored {
            config: point.config.clone(),
            val: point.operating.clone(),
            test: evaluate(&self.cache[&key], &cum, &point.operating.thresholds)?,
        })
    }

    /// A cascade (charged by `cost`) with its validation threshold scored on the test split.
    fn score_cascade(
        &mut self,
        point: &CascadePoint,
        cost: CascadeCost,
    ) -> Result<ScoredCascade, Box<dyn std::error::Error>> {
        let (a, b) = (self.measure(&point.cheap)?, self.measure(&point.big)?);
        let preset = &self.ctx.ckpt.header.preset;
        let last = |c: &SubnetConfig| -> Result<u64, Box<dyn std::error::Error>> {
            Ok(*count(preset, c)?.cum_macs.last().unwrap_or(&0))
        };
        let (records, cum) = cascade_records(
            &[
                (&self.cache[&a], last(&point.cheap)?),
                (&self.cache[&b], last(&point.big)?),
            ],
            cost,
        )?;
        Ok(ScoredCascade {
            cheap: point.cheap.clone(),
            big: point.big.clone(),
            val: point.operating.clone(),
            test: evaluate(&records, &cum, &point.operating.thresholds)?,
        })
    }
}

struct Context {
    ckpt: Checkpoint,
    train: Dataset,
    val: Dataset,
}

fn open(
    model: &Path,
    source: &DataSource,
    val_images: usize,
    device: &burn::tensor::Device,
) -> Result<Context, Box<dyn std::error::Error>> {
    if !model.exists() {
        return Err(format!(
            "{}: no such supernet (train one with `enas4d train`)",
            model.display()
        )
        .into());
    }
    let ckpt = checkpoint::load(model, device).map_err(|e| format!("{}: {e}", model.display()))?;
    let all = source.load(true)?;
    if all.classes != ckpt.header.classes {
        return Err(format!(
            "{}: the data's classes differ from the model's",
            model.display()
        )
        .into());
    }
    let (train, val) = ckpt.header.config.split(&all)?;
    let n = val_images.min(val.len());
    let val = val.subset(&(0..n).collect::<Vec<_>>());
    Ok(Context { ckpt, train, val })
}

/// How each search runs.
struct Settings<'a> {
    resume: bool,
    bn_images: Option<usize>,
    device: &'a burn::tensor::Device,
    quiet: bool,
}

impl Settings<'_> {
    /// BN re-estimation images for the subnets of `ctx`'s supernet.
    fn bn_images(&self, ctx: &Context) -> usize {
        self.bn_images.unwrap_or(ctx.ckpt.header.config.bn_images)
    }
}

fn run_search(
    ctx: &Context,
    options: SearchOptions,
    state_path: &Path,
    label: &str,
    set: &Settings,
) -> Result<SearchState, Box<dyn std::error::Error>> {
    let options = SearchOptions {
        measurement: Some(Measurement {
            val_images: ctx.val.len(),
            bn_images: set.bn_images(ctx),
        }),
        ..options
    };
    let mut state = if set.resume && state_path.exists() {
        let mut state = SearchState::load(state_path)?;
        state.resume_with(&options)?;
        state
    } else {
        SearchState::new(options)
    };
    let preset = ctx.ckpt.header.preset.clone();
    let mut eval = SupernetEvaluator {
        net: &ctx.ckpt.net,
        preset: &preset,
        bn_data: &ctx.train,
        bn_images: set.bn_images(ctx),
        data: &ctx.val,
        device: set.device.clone(),
    };
    let bar = if set.quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(0)
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{prefix:>8} [{bar:28}] {pos}/{len} subnets ({eta})",
        )?
        .progress_chars("=> "),
    );
    bar.set_prefix(label.to_string());
    search(
        &mut state,
        &preset,
        &mut eval,
        Some(state_path),
        &mut |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        },
    )?;
    bar.finish();
    Ok(state)
}

fn default_budgets(preset: &Preset) -> Result<Vec<f64>, Box<dyn std::error::Error>> {
    let lo = count(preset, &SubnetConfig::smallest(preset))?.cum_macs[0] as f64;
    let hi = *count(preset, &SubnetConfig::largest(preset))?
        .cum_macs
        .last()
        .unwrap_or(&1) as f64;
    Ok((1..=4)
        .map(|i| lo + (hi - lo) * f64::from(i) / 5.0)
        .collect())
}

/// Runs `enas4d search`.
pub fn run(args: SearchArgs) -> Result<bool, Box<dyn std::error::Error>> {
    let (device, _) = args.device.burn()?;
    let source = DataSource::parse(&args.data)?;
    let model = match args.model.clone() {
        Some(m) => m,
        None => super::default_supernet()?,
    };
    let multi = open(&model, &source, args.val_images, &device)?;
    let preset = multi.ckpt.header.preset.clone();
    let budgets = if args.budget.is_empty() {
        default_budgets(&preset)?
    } else {
        args.budget.clone()
    };
    let options = SearchOptions {
        budgets: budgets.clone(),
        initial: args.initial,
        population: 8,
        generations: args.generations,
        children: 64,
        measure_per_generation: 4,
        mutation_rate: 0.15,
        seed: args.seed,
        measurement: None,
    };
    std::fs::create_dir_all(&args.out).map_err(|e| enas4d::Error::write(&args.out, e))?;
    let set = Settings {
        resume: args.resume,
        bn_images: args.bn_images,
        device: &device,
        quiet: args.quiet,
    };
    let state = run_search(
        &multi,
        options.clone(),
        &args.out.join("state.json"),
        &format!("S={}", preset.stages),
        &set,
    )?;
    let test = source.load(false)?;
    let test = match args.test_images {
        Some(n) => test.subset(&(0..(n as usize).min(test.len())).collect::<Vec<_>>()),
        None => test,
    };
    let static_ctx = match args.static_model.as_str() {
        "none" => None,
        super::DEFAULT_STATIC => Some(open(
            &super::shipped(super::DEFAULT_STATIC)?,
            &source,
            args.val_images,
            &device,
        )?),
        path => Some(open(Path::new(path), &source, args.val_images, &device)?),
    };
    let static_state = match &static_ctx {
        Some(ctx) => Some(run_search(
            ctx,
            options,
            &args.out.join("state-static.json"),
            "S=1",
            &set,
        )?),
        None => None,
    };
    let mut multi_test = TestRecords::new(&multi, &test, set.bn_images(&multi), &device);
    let mut static_test = static_ctx
        .as_ref()
        .map(|ctx| TestRecords::new(ctx, &test, set.bn_images(ctx), &device));
    let members = static_state
        .as_ref()
        .map(|st| cascade_members(&st.measured))
        .unwrap_or_default();
    let mut results = Vec::new();
    for &budget in &budgets {
        let multi_stage = match state.best_at(budget)? {
            Some(p) => Some(multi_test.score(&p)?),
            None => None,
        };
        let (best_static, best_cascade, reuse_bound) = match (&mut static_test, &static_state) {
            (Some(tr), Some(st)) => {
                let mut pair = |cost| -> Result<_, Box<dyn std::error::Error>> {
                    best_cascade_at(&members, budget, cost)?
                        .map(|p| tr.score_cascade(&p, cost))
                        .transpose()
                };
                let (cascade, bound) = (pair(CascadeCost::Both)?, pair(CascadeCost::Reused)?);
                (
                    st.best_at(budget)?.map(|p| tr.score(&p)).transpose()?,
                    cascade,
                    bound,
                )
            }
            _ => (None, None, None),
        };
        results.push(BudgetResult {
            budget,
            multi_stage,
            best_static,
            best_cascade,
            reuse_bound,
        });
    }
    let largest_static = match (&mut static_test, &static_state) {
        (Some(tr), Some(st)) => {
            let config = SubnetConfig::largest(&tr.ctx.ckpt.header.preset);
            match st.measured.iter().find(|m| m.config == config) {
                Some(m) => {
                    let op = evaluate(&m.records, &m.cum_macs, &[])?;
                    Some(tr.score(&FrontPoint {
                        config,
                        operating: op,
                    })?)
                }
                None => None,
            }
        }
        _ => None,
    };
    let front = state.front()?;
    let static_front = match &static_state {
        Some(st) => st.front()?,
        None => Vec::new(),
    };
    let cascade_front = cascade_front(&members, CascadeCost::Both)?;
    let mut test_curves = TestCurves::default();
    for p in &front {
        let s = multi_test.score(p)?;
        test_curves
            .multi_stage
            .push(CurvePoint::new(&s.val, &s.test));
    }
    if let Some(tr) = &mut static_test {
        for p in &static_front {
            let s = tr.score(p)?;
            test_curves
                .best_static
                .push(CurvePoint::new(&s.val, &s.test));
        }
        let reuse_front = enas4d::search::cascade_front(&members, CascadeCost::Reused)?;
        for (points, cost, curve) in [
            (
                &cascade_front,
                CascadeCost::Both,
                &mut test_curves.static_cascade,
            ),
            (
                &reuse_front,
                CascadeCost::Reused,
                &mut test_curves.reuse_bound,
            ),
        ] {
            for p in points {
                let s = tr.score_cascade(p, cost)?;
                curve.push(CurvePoint::new(&s.val, &s.test));
            }
        }
    }
    let pts = |c: &[CurvePoint]| {
        c.iter()
            .map(|p| (p.avg_macs, p.accuracy))
            .collect::<Vec<_>>()
    };
    let (mp, sp, cp, rp) = (
        pts(&test_curves.multi_stage),
        pts(&test_curves.best_static),
        pts(&test_curves.static_cascade),
        pts(&test_curves.reuse_bound),
    );
    let chosen: Vec<(f64, f64)> = results
        .iter()
        .filter_map(|r| r.multi_stage.as_ref())
        .map(|s| (s.test.avg_macs, s.test.accuracy))
        .collect();
    let multi_label = format!(
        "multi-stage (S={}), early exit",
        multi.ckpt.header.preset.stages
    );
    let mut series = vec![Series {
        label: &multi_label,
        points: &mp,
        line: true,
    }];
    if !sp.is_empty() {
        series.push(Series {
            label: "best static subnets (S=1)",
            points: &sp,
            line: true,
        });
    }
    if !cp.is_empty() {
        series.push(Series {
            label: "cascade of two static subnets",
            points: &cp,
            line: true,
        });
    }
    if !rp.is_empty() {
        series.push(Series {
            label: "reuse bound: the cascade, cheap net's cost refunded",
            points: &rp,
            line: true,
        });
    }
    series.push(Series {
        label: "chosen for a budget",
        points: &chosen,
        line: false,
    });
    let plot = args.out.join("pareto.svg");
    plot_front(
        &plot,
        "Test accuracy vs average MACs (thresholds fitted on validation)",
        &series,
    )?;
    let report = Front {
        model: model.display().to_string(),
        static_model: static_ctx.as_ref().map(|_| args.static_model.clone()),
        predictor_rank_correlation: state.predictor_rank_correlation,
        static_predictor_rank_correlation: static_state
            .as_ref()
            .and_then(|s| s.predictor_rank_correlation),
        measured: state.measured.len(),
        budgets: results,
        largest_static,
        front,
        static_front,
        cascade_front,
        test_curves,
    };
    let json = args.out.join("front.json");
    report.save(&json)?;
    print_table(&report);
    println!("front: {}  plot: {}", json.display(), plot.display());
    Ok(true)
}

fn print_table(r: &Front) {
    let m = |v: f64| v / 1e6;
    println!(
        "{:<34} {:>9} {:>9} {:>10}",
        "net (test split)", "accuracy", "avg MACs", "exit shares"
    );
    if let Some(l) = &r.largest_static {
        println!(
            "{:<34} {:>8.2}% {:>8.2}M",
            "largest static (S=1)",
            l.test.accuracy * 100.0,
            m(l.test.avg_macs)
        );
    }
    for b in &r.budgets {
        if let Some(s) = &b.multi_stage {
            let shares: Vec<String> = s
                .test
                .exit_shares
                .iter()
                .map(|x| format!("{:.0}%", x * 100.0))
                .collect();
            println!(
                "{:<34} {:>8.2}% {:>8.2}M {:>10}",
                format!("multi-stage, budget {:.2}M", m(b.budget)),
                s.test.accuracy * 100.0,
                m(s.test.avg_macs),
                shares.join("/")
            );
        }
        if let Some(s) = &b.best_static {
            println!(
                "{:<34} {:>8.2}% {:>8.2}M",
                format!("best static, budget {:.2}M", m(b.budget)),
                s.test.accuracy * 100.0,
                m(s.test.avg_macs)
            );
        }
        for (name, c) in [
            ("static cascade", &b.best_cascade),
            ("reuse bound", &b.reuse_bound),
        ] {
            if let Some(c) = c {
                println!(
                    "{:<34} {:>8.2}% {:>8.2}M {:>10}",
                    format!("{name}, budget {:.2}M", m(b.budget)),
                    c.test.accuracy * 100.0,
                    m(c.test.avg_macs),
                    format!(
                        "{:.0}%/{:.0}%",
                        c.test.exit_shares.first().copied().unwrap_or(0.0) * 100.0,
                        c.test.exit_shares.get(1).copied().unwrap_or(0.0) * 100.0
                    )
                );
            }
        }
    }
    if let Some(rho) = r.predictor_rank_correlation {
        println!("predictor rank correlation (4-fold cross-validation, last exit): {rho:.3}");
    }
}
