//! Running a suite of tests that share one harness (a cluster, a controller, a release), one at a
//! time, with libtest-mimic: `--list` without setting anything up, a clear message when the
//! harness cannot be set up, and the harness's own context on every failure.

use anyhow::{Context, Result};
use libtest_mimic::{Arguments, Failed, Trial};
use std::{future::Future, process::ExitCode, sync::Arc};

/// A test of a suite: a name and a function of the shared harness.
pub type Test<H> = (&'static str, fn(&H) -> Result<()>);

/// What a suite's harness provides besides its setup.
pub trait SuiteHarness: Send + Sync + 'static {
    /// Context appended to a failing test's message (e.g. the controller's last log lines).
    fn failure_context(&self) -> String;

    /// Runs after the last test, before the harness is dropped.
    fn teardown(&self) {}
}

/// Runs `tests` one at a time against the harness `setup` returns.
pub fn run<H: SuiteHarness>(
    suite: &str,
    tests: Vec<Test<H>>,
    setup: impl FnOnce() -> Result<H>,
) -> ExitCode {
    let mut args = Arguments::from_args();
    // The tests share one cluster and stop or reinstall parts of it: one at a time.
    args.test_threads = Some(1);
    if args.list {
        let trials = tests
            .into_iter()
            .map(|(name, _)| Trial::test(name, || Ok(())))
            .collect();
        return libtest_mimic::run(&args, trials).exit_code();
    }
    let harness = match setup() {
        Ok(harness) => Arc::new(harness),
        Err(error) => {
            eprintln!("{suite}: setting up the harness failed: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    let trials = tests
        .into_iter()
        .map(|(name, test)| {
            let harness = harness.clone();
            Trial::test(name, move || {
                test(&harness).map_err(|error| {
                    Failed::from(format!("{error:#}\n{}", harness.failure_context()))
                })
            })
        })
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);
    harness.teardown();
    drop(harness);
    conclusion.exit_code()
}

/// Runs a future to completion on a fresh two-thread runtime (each test owns its runtime).
pub fn block_on<T>(future: impl Future<Output = Result<T>>) -> Result<T> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("building a tokio runtime")?
        .block_on(future)
}
