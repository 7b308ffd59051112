//! `linerate lab up|down|status`: the netns lab from the command line.

use anyhow::bail;
use linerate_driver::lab::{Direction, Lab, LabConfig, Loss, RateLimit};

/// Lab settings as given on the command line.
#[derive(Debug, Clone)]
pub struct LabArgs {
    pub name: String,
    pub mtu: u32,
    pub queues: u32,
    /// Loss probability in percent, both directions.
    pub loss_percent: Option<f64>,
    pub rate_bits: Option<u64>,
}

impl LabArgs {
    pub fn config(&self) -> anyhow::Result<LabConfig> {
        let loss = match self.loss_percent {
            Some(p) if p > 0.0 && p < 100.0 => {
                Some(Loss { probability: p / 100.0, direction: Direction::Both })
            }
            Some(p) => bail!("--loss {p} must be a percentage in (0, 100)"),
            None => None,
        };
        // A burst of 10 ms at the rate (at least two frames) and a 50 ms queue.
        let rate = self.rate_bits.map(|bits| RateLimit {
            bits_per_sec: bits,
            burst_bytes: ((bits / 8 / 100) as u32).max(2 * (self.mtu + 14)),
            max_queue_ms: 50,
        });
        Ok(LabConfig { mtu: self.mtu, queues: self.queues, loss, rate, ..LabConfig::new(&self.name) })
    }
}

/// What to do with the lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabAction {
    Up,
    Down,
    Status,
}

pub fn run(action: LabAction, args: &LabArgs) -> anyhow::Result<()> {
    let lab = Lab::new(args.config()?)?;
    match action {
        LabAction::Up => {
            lab.up()?;
            println!(
                "lab {}: up: namespaces {} ({} {}, linerate's address) and {} ({} {}/24, the kernel)",
                args.name,
                lab.app_ns(),
                lab.app_if(),
                lab.app_addr(),
                lab.kern_ns(),
                lab.kern_if(),
                lab.kern_addr()
            );
        }
        LabAction::Down => {
            lab.down()?;
            println!("lab {}: down", args.name);
        }
        LabAction::Status => println!("lab {}: {}", args.name, lab.status()?),
    }
    Ok(())
}
