//! The `linerate` binary: parses the command line and runs one command. Errors are printed as
//! one line (with their causes joined) and exit with status 1.

use clap::Parser;
use linerate_app::cli::{self, Cli, Command};
use linerate_app::{demo, lab_cmd, serve};
use linerate_stack::time::Duration;

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("linerate: error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Lab { action, args } => lab_cmd::run(cli::lab_action(&action), &args.to_args()),
        Command::Serve(f) => {
            let cores = match &f.cores {
                Some(s) => cli::parse_cores(s)?,
                None => Vec::new(),
            };
            let opts = serve::ServeOptions {
                link: f.link.to_options()?,
                port: f.port,
                root: f.root.clone(),
                cores,
                http: linerate_app::http::HttpConfig::default(),
                drain_timeout: Duration::from_secs(f.drain_timeout),
                log_level: serve::LogLevel::parse(&f.log_level)?,
                congestion: f.cc.parse()?,
            };
            serve::run(&opts)
        }
        Command::Get(f) => {
            linerate_app::client::run(&f.urls, f.output.as_deref(), f.connections, &f.link.to_options()?)
        }
        Command::Demo(f) => demo::run(f.size_mib),
    }
}
