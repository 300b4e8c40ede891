//! Side-by-side benchmark: reset N established loopback connections (1) by filter with
//! SOCK_DESTROY (netloom), (2) with `ss -K` and the same filter, (3) as own sockets through the
//! tracker (method auto, then method fd).
//!
//! Needs root (CAP_NET_ADMIN). Run it with `scripts/bench-fault`.
//!
//! The accepted ends live in a child process (this binary re-run with NETLOOM_BENCH_SERVE=1)
//! so that each process stays under its RLIMIT_NOFILE.
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use netloom_fault::{Filter, Method, ResetOptions, Tracker, list_connections, reset_connections};

type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;

const SERVE: &str = "NETLOOM_BENCH_SERVE";

fn main() -> BoxResult<()> {
    raise_nofile()?;
    if std::env::var_os(SERVE).is_some() {
        return serve();
    }
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(10_000);
    let rounds: usize = std::env::args()
        .nth(2)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(3);
    let mut destroy = Vec::new();
    let mut ss = Vec::new();
    let mut tracker = Vec::new();
    let mut tracker_fd = Vec::new();
    for round in 1..=rounds {
        destroy.push(round_destroy(n)?);
        ss.push(round_ss(n)?);
        tracker.push(round_tracker(n, Method::Auto, Method::Destroy)?);
        tracker_fd.push(round_tracker(n, Method::Fd, Method::Fd)?);
        eprintln!(
            "round {round}: destroy {:.1} ms, ss -K {:.1} ms, tracker {:.1} ms, tracker fd {:.1} ms",
            ms(destroy[round - 1]),
            ms(ss[round - 1]),
            ms(tracker[round - 1]),
            ms(tracker_fd[round - 1])
        );
    }
    let (d, s, t) = (median(&mut destroy), median(&mut ss), median(&mut tracker));
    let tf = median(&mut tracker_fd);
    println!(
        "| reset {n} established loopback connections (median of {rounds}) | time | vs `ss -K` |"
    );
    println!("|---|---|---|");
    println!(
        "| netloom `reset_connections`, method destroy, filter remote 127.0.0.1:PORT | {:.1} ms | {:.2}x faster |",
        ms(d),
        ms(s) / ms(d)
    );
    println!(
        "| `ss -K -t -n dst 127.0.0.1 dport = :PORT` (iproute2 {}), same filter | {:.1} ms | 1.00x |",
        ss_version(),
        ms(s)
    );
    println!(
        "| netloom `Tracker::reset_client_tcp_connections`, own sockets, method auto (= destroy as root) | {:.1} ms | target < 200 ms |",
        ms(t)
    );
    println!(
        "| same, method fd (what an unprivileged process gets) | {:.1} ms | target < 200 ms |",
        ms(tf)
    );
    Ok(())
}

/// A server child holding its accepted ends, plus our connected ends.
struct Setup {
    server: Child,
    addr: SocketAddr,
    clients: Vec<TcpStream>,
}

impl Setup {
    fn new() -> BoxResult<Setup> {
        let mut server = Command::new(std::env::current_exe()?)
            .env(SERVE, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let mut line = String::new();
        BufReader::new(server.stdout.take().ok_or("no stdout")?).read_line(&mut line)?;
        let addr = line.trim().parse()?;
        Ok(Setup {
            server,
            addr,
            clients: Vec::new(),
        })
    }

    fn connect(&mut self, n: usize) -> BoxResult<()> {
        for _ in 0..n {
            self.clients.push(TcpStream::connect(self.addr)?);
        }
        let filter = self.filter();
        let deadline = Instant::now() + Duration::from_secs(30);
        while list_connections(&filter.clone().pid(std::process::id()))?.len() < n {
            if Instant::now() > deadline {
                return Err("connections did not establish".into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    fn filter(&self) -> Filter {
        Filter::new().remote(self.addr.into())
    }

    fn remaining(&self) -> BoxResult<usize> {
        Ok(list_connections(&self.filter())?.len())
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

fn round_destroy(n: usize) -> BoxResult<Duration> {
    let mut s = Setup::new()?;
    s.connect(n)?;
    let filter = s.filter();
    let opts = ResetOptions {
        method: Method::Destroy,
        ..Default::default()
    };
    let t = Instant::now();
    let reports = reset_connections(&filter, opts)?;
    let took = t.elapsed();
    check(reports.iter().filter(|r| r.ok()).count(), n, "destroy")?;
    check(n - s.remaining()?, n, "destroy (left over)")?;
    Ok(took)
}

fn round_ss(n: usize) -> BoxResult<Duration> {
    let mut s = Setup::new()?;
    s.connect(n)?;
    let t = Instant::now();
    let status = Command::new("ss")
        .args([
            "-K",
            "-t",
            "-n",
            "dst",
            &s.addr.ip().to_string(),
            "dport",
            "=",
            &format!(":{}", s.addr.port()),
        ])
        .stdout(Stdio::null())
        .status()?;
    let took = t.elapsed();
    if !status.success() {
        return Err(format!("ss -K failed: {status}").into());
    }
    check(n - s.remaining()?, n, "ss -K")?;
    Ok(took)
}

fn round_tracker(n: usize, method: Method, ran: Method) -> BoxResult<Duration> {
    let mut s = Setup::new()?;
    let tracker = Tracker::new()?.with_options(ResetOptions {
        method,
        ..Default::default()
    });
    s.connect(n)?;
    let t = Instant::now();
    let reports = tracker.reset_client_tcp_connections()?;
    let took = t.elapsed();
    check(
        reports.iter().filter(|r| r.ok() && r.method == ran).count(),
        n,
        "tracker",
    )?;
    check(n - s.remaining()?, n, "tracker (left over)")?;
    Ok(took)
}

fn check(got: usize, want: usize, what: &str) -> BoxResult<()> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: reset {got} of {want}").into())
    }
}

/// The child: accept and hold connections until stdin closes.
fn serve() -> BoxResult<()> {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    sock.bind(&"127.0.0.1:0".parse::<SocketAddr>()?.into())?;
    sock.listen(4096)?;
    let listener: std::net::TcpListener = sock.into();
    println!("{}", listener.local_addr()?);
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let _ = std::io::stdin().read(&mut [0u8; 1]);
    Ok(())
}

fn raise_nofile() -> BoxResult<()> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let hard = getrlimit(Resource::Nofile).maximum;
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: hard,
            maximum: hard,
        },
    )?;
    Ok(())
}

fn ss_version() -> String {
    Command::new("ss")
        .arg("-V")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .trim_start_matches("ss utility, iproute2-")
                .to_string()
        })
        .unwrap_or_default()
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
