//! Command-line interface of `weft`: argument definitions and the pure step from input text to output text.
//! Reading files and writing to stdout/stderr happens in `src/bin/weft.rs`.

use crate::{
    config::{ConfigError, ProxyArgs},
    manifest::{self, InjectMode, ManifestError, Processed},
    Injector,
};

/// Offline tools for the Weft service mesh.
#[derive(Debug, clap::Parser)]
#[command(name = "weft", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Mark workloads for injection (or, with --manual, add the Weft proxy now). Reads multi-document YAML and
    /// writes it to stdout; a report per object goes to stderr.
    Inject(Box<InjectArgs>),
    /// Remove what injection added. Reads multi-document YAML and writes it to stdout.
    Uninject(UninjectArgs),
}

#[derive(Debug, clap::Args)]
pub struct InjectArgs {
    /// Add the proxy containers now, exactly as the webhook would (the namespace counts as enabled), instead of
    /// only adding the `weft.dev/inject: enabled` annotation
    #[arg(long)]
    pub manual: bool,

    /// Manifest file to read; `-` reads stdin
    #[arg(short = 'f', long = "file", default_value = "-")]
    pub file: String,

    #[command(flatten)]
    pub proxy: ProxyArgs,
}

#[derive(Debug, clap::Args)]
pub struct UninjectArgs {
    /// Manifest file to read; `-` reads stdin
    #[arg(short = 'f', long = "file", default_value = "-")]
    pub file: String,
}

impl Command {
    /// The file the command reads (`-` for stdin).
    pub fn file(&self) -> &str {
        match self {
            Command::Inject(args) => &args.file,
            Command::Uninject(args) => &args.file,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
}

/// Runs a command on the input text; nothing is written anywhere.
pub fn execute(command: &Command, input: &str) -> Result<Processed, CliError> {
    match command {
        Command::Inject(args) => {
            let injector = Injector::new(args.proxy.to_config()?);
            let mode = if args.manual {
                InjectMode::Manual
            } else {
                InjectMode::Annotate
            };
            Ok(manifest::inject(input, &injector, mode)?)
        }
        Command::Uninject(_) => Ok(manifest::uninject_manifest(input)?),
    }
}
