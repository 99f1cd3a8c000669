//! Writes the policy CRDs to `charts/weft/crds/`, or with `--check` verifies the committed copies.
//!
//! Usage: weft-crdgen [--check] [--dir DIR]

use std::{path::PathBuf, process::ExitCode};
use weft_policy_k8s_api::crdgen;

const USAGE: &str = "usage: weft-crdgen [--check] [--dir DIR]";

fn main() -> ExitCode {
    let mut check = false;
    let mut dir = crdgen::chart_crd_dir();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--check" => check = true,
            "--dir" => match args.next() {
                Some(d) => dir = PathBuf::from(d),
                None => {
                    eprintln!("--dir needs a directory\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("unknown argument {other:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }

    let files = match crdgen::render() {
        Ok(files) => files,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };

    if check {
        let mut stale = Vec::new();
        for file in &files {
            let committed = std::fs::read_to_string(dir.join(&file.file_name)).ok();
            stale.extend(crdgen::staleness(file, committed.as_deref()));
        }
        if stale.is_empty() {
            println!("CRDs in {} are up to date", dir.display());
            return ExitCode::SUCCESS;
        }
        eprintln!(
            "CRDs in {} are stale; run `cargo run -p weft-policy-k8s-api --bin weft-crdgen`\n{}",
            dir.display(),
            stale.join("\n")
        );
        return ExitCode::FAILURE;
    }

    if let Err(error) = std::fs::create_dir_all(&dir) {
        eprintln!("creating {}: {error}", dir.display());
        return ExitCode::FAILURE;
    }
    for file in files {
        let path = dir.join(&file.file_name);
        if let Err(error) = std::fs::write(&path, &file.contents) {
            eprintln!("writing {}: {error}", path.display());
            return ExitCode::FAILURE;
        }
        println!("wrote {}", path.display());
    }
    ExitCode::SUCCESS
}
