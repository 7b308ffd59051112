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
                io_cores: f.io_cores.as_deref().map(cli::parse_io_cores).transpose()?,
                http: f.http_config()?,
                drain_timeout: Duration::from_secs(f.drain_timeout),
                log_level: serve::LogLevel::parse(&f.log_level)?,
                syn_cookies: f.syncookies.parse().map_err(|e| anyhow::anyhow!("--syncookies: {e}"))?,
                fast_open: f.tfo,
                congestion: f.cc.parse()?,
                bbr_tolerate_random_loss: f.bbr_tolerate_random_loss(),
                pacing: f.pacing(),
                control_socket: f.control_socket.clone(),
            };
            serve::run(&opts)
        }
        Command::Get(f) => {
            linerate_app::client::run(&f.urls, f.output.as_deref(), f.connections, &f.link.to_options()?)
        }
        Command::Put(f) => linerate_app::client::put(&f.file, &f.url, &f.link.to_options()?),
        Command::Stats(f) => linerate_app::control::client::run(&f.to_options()?),
        Command::Demo(f) => demo::run(f.size_mib),
    }
}
