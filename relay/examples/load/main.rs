//! Load benchmark for the relay: idle browser-like peers, ramped up in steps.
//!
//!   make bench-load        (ulimit -n raised, release relay, LOAD_ARGS)
//!   cargo run --release -p shoal-relay --example load -- --steps 1000,5000,10000,20000
//!
//! Starts the relay binary on a free loopback port, then adds simulated pages
//! ([`peer`]) that connect over the relay's WebSocket, reserve a circuit slot,
//! register in a swarm of `--swarm-size` pages at the rendezvous server and
//! ping every 5 s — what an open shoal tab does. Pages come from many
//! loopback source addresses (`--per-ip` each), as households would. At each
//! step it measures the relay's resident memory and CPU, discovery round
//! trips, and circuit set-up (the relayed connection signaling runs on)
//! between random pairs of one swarm, then prints a Markdown table and, with
//! `--write`, puts it in BENCHMARKS.md between `<!-- bench:load -->` markers.

mod bound_tcp;
mod peer;
mod relay_proc;
mod report;

use std::{
    collections::BTreeMap,
    net::Ipv4Addr,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use clap::Parser;
use libp2p::{rendezvous::Namespace, Multiaddr, PeerId};
use tokio::sync::{mpsc, oneshot, Semaphore};

use peer::{Failure, Ready, Request};
use relay_proc::RelayProcess;
use report::{Percentiles, Step};

#[derive(Parser, Debug)]
#[command(about = "Ramp idle browser-like peers against the relay and measure it")]
pub struct Args {
    /// The relay binary to start.
    #[arg(long, default_value = "target/release/relay")]
    relay_bin: PathBuf,
    /// Total peers after each step.
    #[arg(long, value_delimiter = ',', default_value = "1000,5000,10000,20000")]
    steps: Vec<usize>,
    /// Pages per loopback source address.
    #[arg(long, default_value_t = 100)]
    per_ip: usize,
    /// Pages per swarm (rendezvous namespace).
    #[arg(long, default_value_t = 10)]
    swarm_size: usize,
    /// Pages being set up at once.
    #[arg(long, default_value_t = 128)]
    concurrency: usize,
    /// Discovery and circuit samples per step.
    #[arg(long, default_value_t = 200)]
    samples: usize,
    /// More relay flags.
    #[arg(long, allow_hyphen_values = true)]
    relay_arg: Vec<String>,
    /// Write the table into BENCHMARKS.md.
    #[arg(long)]
    write: bool,
}

struct Page {
    id: PeerId,
    swarm: usize,
    requests: mpsc::Sender<Request>,
}

/// Source address of the `i`-th page: 127.1.0.1 upwards, `per_ip` pages each.
fn source(i: usize, per_ip: usize) -> Ipv4Addr {
    let n = (i / per_ip) as u32 + 1;
    Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 1, 0, 0)) + n)
}

/// A small deterministic generator for picking sample pages.
struct XorShift(u64);
impl XorShift {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .try_init();
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let relay = RelayProcess::start(&args.relay_bin, port, &args.relay_arg).await?;
    let relay_peer: PeerId = relay.info.peer_id.parse()?;
    let relay_addr: Multiaddr = relay.info.listen_addrs[0].parse()?;
    eprintln!(
        "relay pid {} at {} ({})",
        relay.pid(),
        relay.http,
        relay_peer
    );
    let idle_rss = relay.rss()?;

    let mut pages: Vec<Page> = Vec::new();
    let mut failures: BTreeMap<Failure, usize> = BTreeMap::new();
    let mut steps = Vec::new();
    let mut rng = XorShift(0x5eed_1234_abcd_9876);
    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(args.concurrency));

    for &target in &args.steps {
        let cpu0 = relay.cpu_seconds()?;
        let t0 = Instant::now();
        let mut pending = Vec::new();
        let mut setup_times = Vec::new();
        let mut i = pages.len() + failures.values().sum::<usize>();
        while pages.len() + pending.len() < target {
            let permit = gate.clone().acquire_owned().await?;
            let (ready_tx, ready_rx) = oneshot::channel();
            let (req_tx, req_rx) = mpsc::channel(4);
            let swarm = i / args.swarm_size;
            let setup = peer::Setup {
                source: source(i, args.per_ip),
                relay_addr: relay_addr.clone(),
                relay_peer,
                namespace: Namespace::new(format!("shoal/load-{swarm}"))?,
            };
            tokio::spawn(peer::run(setup, ready_tx, req_rx));
            // The permit is held until this page is up (or failed).
            let ready = async move {
                let r = ready_rx.await.unwrap_or(Err(Failure::Disconnected));
                drop(permit);
                r
            };
            pending.push((tokio::spawn(ready), swarm, req_tx));
            i += 1;
        }
        for (handle, swarm, requests) in pending {
            match handle.await? {
                Ok(Ready {
                    peer,
                    connect,
                    reserve,
                    register,
                }) => {
                    setup_times.push(connect + reserve + register);
                    pages.push(Page {
                        id: peer,
                        swarm,
                        requests,
                    });
                }
                Err(f) => *failures.entry(f).or_default() += 1,
            }
        }
        let ramp = t0.elapsed();
        let ramp_cpu = relay.cpu_seconds()? - cpu0;
        // Let the burst settle, then read memory and idle CPU.
        tokio::time::sleep(Duration::from_secs(10)).await;
        let rss = relay.rss()?;
        let cpu1 = relay.cpu_seconds()?;
        tokio::time::sleep(Duration::from_secs(10)).await;
        let idle_cpu = (relay.cpu_seconds()? - cpu1) / 10.0;

        let mut discover = Vec::new();
        let mut circuits = Vec::new();
        for _ in 0..args.samples {
            if pages.is_empty() {
                break;
            }
            let a = &pages[rng.below(pages.len())];
            let (tx, rx) = oneshot::channel();
            if a.requests.send(Request::Discover(tx)).await.is_ok() {
                match rx.await {
                    Ok(Ok(d)) => discover.push(d),
                    Ok(Err(f)) => *failures.entry(f).or_default() += 1,
                    Err(_) => *failures.entry(Failure::Disconnected).or_default() += 1,
                }
            }
            // Another page of the same swarm, if it has one up.
            let mates: Vec<&Page> = pages
                .iter()
                .filter(|p| p.swarm == a.swarm && p.id != a.id)
                .collect();
            if mates.is_empty() {
                continue;
            }
            let b = mates[rng.below(mates.len())];
            let (tx, rx) = oneshot::channel();
            if a.requests.send(Request::Circuit(b.id, tx)).await.is_ok() {
                match rx.await {
                    Ok(Ok(d)) => circuits.push(d),
                    Ok(Err(f)) => *failures.entry(f).or_default() += 1,
                    Err(_) => *failures.entry(Failure::Disconnected).or_default() += 1,
                }
            }
        }
        let step = Step {
            peers: pages.len(),
            failures: failures.clone(),
            ramp,
            ramp_cpu,
            setup: Percentiles::of(&mut setup_times),
            rss,
            idle_rss,
            idle_cpu,
            fds: relay.fds()?,
            discover: Percentiles::of(&mut discover),
            circuit: Percentiles::of(&mut circuits),
        };
        eprintln!("{}", step.line());
        steps.push(step);
    }

    let table = report::markdown(&args, &steps, started.elapsed());
    println!("{table}");
    if args.write {
        report::write_section("BENCHMARKS.md", &table)?;
        eprintln!("wrote BENCHMARKS.md");
    }
    drop(pages);
    Ok(())
}
