//! `weft`: offline injection and uninjection of Kubernetes manifests, `weft check` of an
//! installation, `weft policy` of a pod's port and `weft endpoints` of a Service port. See
//! `weft --help`.

use anyhow::Context;
use clap::Parser;
use std::{
    io::{Read, Write},
    process::ExitCode,
};
use weft_cli::{
    check,
    check::CheckArgs,
    cli::{execute, Cli, Command},
    endpoints_cli::{self, EndpointsArgs},
    policy_cli::{self, PolicyArgs},
};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Check(args) => run_check(args),
        Command::Policy(args) => run_policy(args).map(|()| ExitCode::SUCCESS),
        Command::Endpoints(args) => run_endpoints(args).map(|()| ExitCode::SUCCESS),
        command => run_manifest(command).map(|()| ExitCode::SUCCESS),
    };
    result.unwrap_or_else(|error| {
        eprintln!("error: {error:#}");
        ExitCode::FAILURE
    })
}

/// Prints the report of `weft check`; exits 1 when a check failed.
fn run_check(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let groups = if args.linkerd {
        runtime.block_on(check::linkerd_fetch::run(args))
    } else {
        runtime.block_on(check::fetch::run(args))
    };
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(check::render(&groups).as_bytes())
        .and_then(|()| stdout.flush())
        .context("cannot write to stdout")?;
    Ok(ExitCode::from(check::exit_code(&groups)))
}

/// Prints the policy (with --watch, every change of it) as YAML documents.
fn run_policy(args: &PolicyArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(policy_cli::client::run(args, print))
}

/// Prints the endpoints (with --watch, then a line per change).
fn run_endpoints(args: &EndpointsArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(endpoints_cli::client::run(args, print))
}

/// Writes `text` to stdout now (a watch prints as changes come).
fn print(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .context("cannot write to stdout")
}

fn run_manifest(command: &Command) -> anyhow::Result<()> {
    let file = command.file().unwrap_or("-");
    let input = if file == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read stdin")?;
        text
    } else {
        std::fs::read_to_string(file).with_context(|| format!("cannot read {file}"))?
    };
    let processed = execute(command, &input)?;
    let mut stderr = std::io::stderr().lock();
    for line in &processed.report {
        writeln!(stderr, "{line}").context("cannot write the report to stderr")?;
    }
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(processed.yaml.as_bytes())
        .and_then(|()| stdout.flush())
        .context("cannot write to stdout")?;
    Ok(())
}
