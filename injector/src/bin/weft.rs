//! `weft`: offline injection and uninjection of Kubernetes manifests. See `weft --help`.

use anyhow::Context;
use clap::Parser;
use std::io::{Read, Write};
use weft_injector::cli::{execute, Cli};

fn main() {
    if let Err(error) = run() {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let file = cli.command.file();
    let input = if file == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read stdin")?;
        text
    } else {
        std::fs::read_to_string(file).with_context(|| format!("cannot read {file}"))?
    };
    let processed = execute(&cli.command, &input)?;
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
