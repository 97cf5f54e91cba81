//! Stand-alone `sla` command for benchmarking and trying the crate before the `vitals` binary
//! wires `vitals sla`: the same arguments, the same output, the same exit codes (2 on error).

use std::process::ExitCode;

use clap::Parser;

#[derive(Parser)]
#[command(name = "sla", about = "SLA report from service logs")]
struct Cli {
    #[command(flatten)]
    args: vitals_sla::SlaArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let stdout = std::io::stdout();
    match vitals_sla::run(&cli.args, &mut stdout.lock()) {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("sla: {e:#}");
            ExitCode::from(2)
        }
    }
}
