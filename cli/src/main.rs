//! The `receptive` command: `shape` describes a layer; `bench` measures one.

mod bench;
mod case;
mod shape;

use std::process::ExitCode;

const USAGE: &str = "usage:
  receptive bench [options]     time and check a suite of layers (receptive bench --help)
  receptive shape conv|maxpool|avgpool|globalavgpool|globalmaxpool key=value ... [--strict]
      e.g. receptive shape conv n=1 c=3 h=32 w=32 k=10 kh=5 kw=5 stride=1 pad=2";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let print = |text: String| {
        println!("{text}");
        ExitCode::SUCCESS
    };
    let result = match args.first().map(String::as_str) {
        Some("bench") => bench::run(&args[1..]),
        Some("shape") => shape::run(&args[1..]).map(print),
        Some("-h" | "--help" | "help") | None => Ok(print(USAGE.to_string())),
        Some(other) => Err(format!("unknown command '{other}'\n{USAGE}")),
    };
    result.unwrap_or_else(|e| {
        eprintln!("error: {e}");
        ExitCode::FAILURE
    })
}
