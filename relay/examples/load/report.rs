//! Figures of one step and the Markdown the benchmark prints and writes.

use std::{collections::BTreeMap, fs, time::Duration};

use crate::{peer::Failure, Args};

#[derive(Debug, Clone, Copy, Default)]
pub struct Percentiles {
    pub n: usize,
    pub p50: Duration,
    pub p99: Duration,
}

impl Percentiles {
    pub fn of(samples: &mut [Duration]) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort();
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
        Self {
            n: samples.len(),
            p50: at(0.5),
            p99: at(0.99),
        }
    }

    fn cell(&self) -> String {
        if self.n == 0 {
            return "–".into();
        }
        format!("{:.1} / {:.1}", ms(self.p50), ms(self.p99))
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub struct Step {
    pub peers: usize,
    pub failures: BTreeMap<Failure, usize>,
    pub ramp: Duration,
    pub ramp_cpu: f64,
    pub setup: Percentiles,
    pub rss: u64,
    pub idle_rss: u64,
    pub idle_cpu: f64,
    pub fds: usize,
    pub discover: Percentiles,
    pub circuit: Percentiles,
}

impl Step {
    fn per_peer_kib(&self) -> f64 {
        (self.rss.saturating_sub(self.idle_rss)) as f64 / 1024.0 / self.peers.max(1) as f64
    }

    fn failures_text(&self) -> String {
        if self.failures.is_empty() {
            return "none".into();
        }
        self.failures
            .iter()
            .map(|(f, n)| format!("{f:?} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn line(&self) -> String {
        format!(
            "{} peers up ({} failed so far: {}); ramp {:.1} s, relay {:.1} CPU-s; RSS {:.1} MiB ({:.1} KiB/peer); idle CPU {:.1} %; discover p50/p99 {} ms; circuit {} ms",
            self.peers,
            self.failures.values().sum::<usize>(),
            self.failures_text(),
            self.ramp.as_secs_f64(),
            self.ramp_cpu,
            self.rss as f64 / 1048576.0,
            self.per_peer_kib(),
            self.idle_cpu * 100.0,
            self.discover.cell(),
            self.circuit.cell(),
        )
    }
}

fn machine() -> String {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cores} × {cpu}, Linux {}", kernel.trim())
}

/// This process's open-file limit (the relay inherits it).
fn open_files() -> String {
    fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| {
            l.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).map(str::to_owned))
        })
        .unwrap_or_else(|| "unknown".into())
}

fn today() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map_or_else(|| "unknown date".into(), |s| s.trim().to_owned())
}

pub fn markdown(args: &Args, steps: &[Step], total: Duration) -> String {
    let mut out = String::new();
    out.push_str("## Relay under load: idle pages, discovery and circuits\n\n");
    out.push_str(&format!(
        "Machine: {}. Date: {}. Open-file limit: {}. Command: `make bench-load` (`ulimit -n $(ulimit -Hn); cargo run --release -p shoal-relay --example load -- --steps {} --per-ip {} --swarm-size {} --concurrency {} --samples {}`), {:.0} s in all.\n\n",
        machine(),
        today(),
        open_files(),
        args.steps.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
        args.per_ip,
        args.swarm_size,
        args.concurrency,
        args.samples,
        total.as_secs_f64(),
    ));
    out.push_str("Each simulated page does what an open tab does with the relay: WebSocket + Noise + Yamux from its own loopback address (one of many, `--per-ip` pages each), a circuit reservation, a rendezvous registration in a swarm of `--swarm-size`, a ping every 5 s. The load generator runs on the same 2 cores as the relay, so round trips include its own scheduling. RSS from /proc/<pid>/status 10 s after the step; per peer = (RSS − RSS with no peers) ÷ peers. Idle CPU: the relay's CPU over the next 10 s. Discover: a rendezvous DISCOVER of the page's swarm. Circuit: dial another page of the swarm through the relay until the relayed connection is up (Noise and Yamux over the circuit included), then close it.\n\n");
    out.push_str("| peers up | failed (cumulative) | ramp s | relay CPU-s in ramp | set-up p50 / p99 ms | relay RSS MiB | KiB / peer | relay fds | idle CPU % | discover p50 / p99 ms | circuit p50 / p99 ms |\n");
    out.push_str("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for s in steps {
        out.push_str(&format!(
            "| {} | {} | {:.1} | {:.1} | {} | {:.1} | {:.1} | {} | {:.1} | {} | {} |\n",
            s.peers,
            s.failures_text(),
            s.ramp.as_secs_f64(),
            s.ramp_cpu,
            s.setup.cell(),
            s.rss as f64 / 1048576.0,
            s.per_peer_kib(),
            s.fds,
            s.idle_cpu * 100.0,
            s.discover.cell(),
            s.circuit.cell(),
        ));
    }
    out
}

const START: &str = "<!-- bench:load -->";
const END: &str = "<!-- /bench:load -->";

/// Replaces the section between the markers in `path`, or appends it.
pub fn write_section(path: &str, table: &str) -> anyhow::Result<()> {
    let text = fs::read_to_string(path).unwrap_or_default();
    let section = format!("{START}\n{table}{END}");
    let new = match (text.find(START), text.find(END)) {
        (Some(a), Some(b)) if a < b => format!("{}{section}{}", &text[..a], &text[b + END.len()..]),
        _ => format!("{}\n{section}\n", text.trim_end()),
    };
    fs::write(path, new)?;
    Ok(())
}
