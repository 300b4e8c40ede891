//! `netloom proxy`: the Toxiproxy-compatible chaos proxy server, and a control CLI with
//! toxiproxy-cli's verbs that talks to any Toxiproxy-compatible server.
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use netloom_channel::LoopOptions;
use netloom_proxy::{ApiClient, ProxyServer, ServerOptions};
use serde_json::{Map, Value, json};

/// Arguments of `netloom proxy`.
#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ProxyArgs {
    /// Control a running server instead of starting one.
    #[command(subcommand)]
    pub command: Option<ControlCommand>,
    /// Address or host name of the HTTP API (`localhost` as toxiproxy-server takes it).
    /// Anything but loopback is reachable by others: a warning is printed then.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port of the HTTP API (0: a free port; the bound address is printed first).
    #[arg(long, default_value_t = 8474, value_parser = clap::value_parser!(u16).range(0..=65535))]
    pub port: u16,
    /// Toxiproxy's JSON array of proxies to create at start; each may have "toxics".
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Seed of every random decision (toxicity, jitter, slicer sizes); default: from the
    /// clock, printed at start.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Refuse unknown JSON fields and toxic attributes with a 400.
    #[arg(long)]
    pub strict: bool,
    /// Event loop threads carrying the proxied connections (1-256).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: u16,
    /// Keep the event loops polling for this many microseconds after traffic instead of
    /// sleeping (0..=10000; 0 sleeps at once): a message answered within it meets an awake
    /// loop, for a CPU kept busy while traffic flows (docs/proxy.md).
    #[arg(long, default_value_t = 100, value_name = "MICROS",
          value_parser = clap::value_parser!(u16).range(0..=10_000))]
    pub busy_poll: u16,
}

/// toxiproxy-cli's verbs.
#[derive(clap::Subcommand)]
pub enum ControlCommand {
    /// List the proxies.
    List(Api),
    /// Show a proxy and its toxics.
    Inspect {
        #[command(flatten)]
        api: Api,
        /// The proxy.
        name: String,
    },
    /// Create a proxy.
    Create {
        #[command(flatten)]
        api: Api,
        /// The proxy's name.
        name: String,
        /// Address to listen on (port 0: a free port).
        #[arg(short, long, default_value = "127.0.0.1:0")]
        listen: String,
        /// Upstream HOST:PORT.
        #[arg(short, long)]
        upstream: String,
        /// Proxy UDP datagrams (the same as --protocol udp).
        #[arg(long, conflicts_with = "protocol")]
        udp: bool,
        /// What the proxy carries: tcp (the default) or udp.
        #[arg(long, value_parser = ["tcp", "udp"])]
        protocol: Option<String>,
        /// UDP: milliseconds without a datagram after which a client peer and its upstream
        /// socket are closed (1-31536000000; server default 60000).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=31_536_000_000))]
        udp_idle_timeout_ms: Option<u64>,
        /// UDP: client peers tracked at once; datagrams of further clients are dropped
        /// (1-65536; server default 1024).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=65_536))]
        udp_max_peers: Option<u64>,
        /// UDP: bytes one direction of one peer may hold in toxics before datagrams are
        /// dropped (1024-67108864; server default 262144).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1024..=67_108_864))]
        udp_max_queued_bytes: Option<u64>,
    },
    /// Enable a disabled proxy, or disable an enabled one.
    Toggle {
        #[command(flatten)]
        api: Api,
        /// The proxy.
        name: String,
    },
    /// Delete a proxy.
    Delete {
        #[command(flatten)]
        api: Api,
        /// The proxy.
        name: String,
    },
    /// Add, update or remove toxics.
    #[command(subcommand)]
    Toxic(ToxicCommand),
}

/// Where the API is.
#[derive(clap::Args)]
pub struct Api {
    /// The API's HOST:PORT.
    #[arg(long, default_value = "127.0.0.1:8474")]
    pub api: String,
    /// Print the JSON the server answered.
    #[arg(long)]
    pub json: bool,
}

/// `netloom proxy toxic …`.
#[derive(clap::Subcommand)]
pub enum ToxicCommand {
    /// Add a toxic (on a UDP proxy: latency, bandwidth, limit_data, loss, duplicate, reorder).
    Add {
        #[command(flatten)]
        api: Api,
        /// The proxy.
        proxy: String,
        /// Toxic type (latency, bandwidth, slow_close, timeout, reset_peer, slicer, limit_data,
        /// loss).
        #[arg(short = 't', long = "type")]
        kind: String,
        /// Toxic name (default TYPE_STREAM).
        #[arg(short = 'n', long = "toxic-name")]
        toxic_name: Option<String>,
        /// Attribute KEY=VALUE (a non-negative integer or decimal), repeatable.
        #[arg(short, long = "attribute")]
        attribute: Vec<String>,
        /// Share of connections it acts on (0.0-1.0).
        #[arg(long = "tox", default_value_t = 1.0)]
        toxicity: f64,
        /// Act on client -> upstream bytes.
        #[arg(short, long, conflicts_with = "downstream")]
        upstream: bool,
        /// Act on upstream -> client bytes (the default).
        #[arg(short, long)]
        downstream: bool,
    },
    /// Change a toxic's attributes or toxicity (others keep their values).
    Update {
        #[command(flatten)]
        api: Api,
        /// The proxy.
        proxy: String,
        /// The toxic.
        #[arg(short = 'n', long = "toxic-name")]
        toxic_name: String,
        /// Attribute KEY=VALUE (a non-negative integer or decimal), repeatable.
        #[arg(short, long = "attribute")]
        attribute: Vec<String>,
        /// Share of connections it acts on (0.0-1.0).
        #[arg(long = "tox")]
        toxicity: Option<f64>,
    },
    /// Remove a toxic.
    Remove {
        #[command(flatten)]
        api: Api,
        /// The proxy.
        proxy: String,
        /// The toxic.
        #[arg(short = 'n', long = "toxic-name")]
        toxic_name: String,
    },
}

/// Runs the server, or one control command.
pub fn run(args: ProxyArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        Some(cmd) => control(cmd),
        None => serve(args),
    }
}

fn serve(args: ProxyArgs) -> anyhow::Result<ExitCode> {
    let mut options = ServerOptions {
        strict: args.strict,
        threads: usize::from(args.threads),
        event_loop: LoopOptions {
            busy_poll: Duration::from_micros(u64::from(args.busy_poll)),
        },
        ..ServerOptions::default()
    };
    if let Some(seed) = args.seed {
        options.seed = seed;
    }
    let server = ProxyServer::new(options)?;
    if let Some(path) = &args.config {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let v: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        let (made, err) = server.populate(&v);
        if let Some(e) = err {
            bail!("{}: {e}", path.display());
        }
        for p in &made {
            eprintln!(
                "proxy {} listening on {} -> {}",
                p["name"], p["listen"], p["upstream"]
            );
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port))
            .await
            .with_context(|| format!("binding the API on {}:{}", args.host, args.port))?;
        let bound = listener.local_addr()?;
        println!("API listening on {bound} (seed {})", server.seed());
        if !bound.ip().is_loopback() {
            eprintln!(
                "warning: the API listens on {bound}, not on loopback: anyone who can reach it \
                 can create proxies"
            );
        }
        // Ctrl-C or SIGTERM end the server through its destructors, which close the
        // proxies and remove their kernel rules (TCP `loss`).
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = netloom_proxy::api::serve(server, listener) => r?,
            _ = tokio::signal::ctrl_c() => eprintln!("interrupted: removing the proxies"),
            _ = term.recv() => eprintln!("terminated: removing the proxies"),
        }
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

fn call(api: &Api, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
    let (status, v) = ApiClient::new(&api.api).request(method, path, body)?;
    if !(200..300).contains(&status) {
        let msg = v["error"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or(v.to_string());
        bail!("{method} {path}: {status}: {msg}");
    }
    Ok(v)
}

fn attributes(list: &[String]) -> anyhow::Result<Map<String, Value>> {
    list.iter()
        .map(|a| {
            let (k, v) = a
                .split_once('=')
                .with_context(|| format!("attribute {a:?} is not KEY=VALUE"))?;
            // Integers (most attributes) or decimals (`probability=0.3`).
            let n = match v.parse::<u64>() {
                Ok(n) => Value::from(n),
                Err(_) => v
                    .parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite() && *f >= 0.0)
                    .map(Value::from)
                    .with_context(|| {
                        format!("attribute {k}: {v:?} is not a non-negative number")
                    })?,
            };
            Ok((k.to_owned(), n))
        })
        .collect()
}

fn check_toxicity(t: f64) -> anyhow::Result<()> {
    if !(0.0..=1.0).contains(&t) {
        bail!("--tox {t} is not between 0.0 and 1.0");
    }
    Ok(())
}

/// The header of `proxy list`; `print_proxy` writes one row under it.
const PROXY_COLUMNS: &str = "name\tlisten\tupstream\tprotocol\tenabled\ttoxics";

fn print_proxy(p: &Value) {
    let state = if p["enabled"] == true {
        "enabled"
    } else {
        "disabled"
    };
    // Toxiproxy's own server has no `protocol` field: its proxies are TCP.
    let protocol = p["protocol"].as_str().unwrap_or("tcp");
    println!(
        "{}\t{}\t{}\t{protocol}\t{state}\t{}",
        p["name"].as_str().unwrap_or(""),
        p["listen"].as_str().unwrap_or(""),
        p["upstream"].as_str().unwrap_or(""),
        p["toxics"].as_array().map_or(0, Vec::len)
    );
}

fn done(api: &Api, v: &Value, text: impl FnOnce(&Value)) -> anyhow::Result<ExitCode> {
    if api.json {
        println!("{}", serde_json::to_string(v)?);
    } else {
        text(v);
    }
    Ok(ExitCode::SUCCESS)
}

fn control(cmd: ControlCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ControlCommand::List(api) => {
            let v = call(&api, "GET", "/proxies", None)?;
            done(&api, &v, |v| {
                println!("{PROXY_COLUMNS}");
                for p in v.as_object().into_iter().flat_map(|m| m.values()) {
                    print_proxy(p);
                }
            })
        }
        ControlCommand::Inspect { api, name } => {
            let v = call(&api, "GET", &format!("/proxies/{name}"), None)?;
            done(&api, &v, |v| {
                print_proxy(v);
                for t in v["toxics"].as_array().into_iter().flatten() {
                    println!(
                        "  {}\t{}\t{}\ttoxicity {}\t{}",
                        t["name"].as_str().unwrap_or(""),
                        t["type"].as_str().unwrap_or(""),
                        t["stream"].as_str().unwrap_or(""),
                        t["toxicity"],
                        t["attributes"]
                    );
                }
            })
        }
        ControlCommand::Create {
            api,
            name,
            listen,
            upstream,
            udp,
            protocol,
            udp_idle_timeout_ms,
            udp_max_peers,
            udp_max_queued_bytes,
        } => {
            let mut body = json!({"name": name, "listen": listen, "upstream": upstream});
            let protocol = if udp {
                Some("udp".to_owned())
            } else {
                protocol
            };
            let mut limits = Map::new();
            for (k, v) in [
                ("idle_timeout_ms", udp_idle_timeout_ms),
                ("max_peers", udp_max_peers),
                ("max_queued_bytes", udp_max_queued_bytes),
            ] {
                if let Some(v) = v {
                    limits.insert(k.to_owned(), json!(v));
                }
            }
            if !limits.is_empty() && protocol.as_deref() != Some("udp") {
                bail!("--udp-* options need --udp (or --protocol udp)");
            }
            if let Some(p) = protocol {
                body["protocol"] = json!(p);
            }
            if !limits.is_empty() {
                body["udp"] = Value::Object(limits);
            }
            let v = call(&api, "POST", "/proxies", Some(&body))?;
            done(&api, &v, |v| {
                println!("created proxy {name} on {}", v["listen"])
            })
        }
        ControlCommand::Toggle { api, name } => {
            let p = call(&api, "GET", &format!("/proxies/{name}"), None)?;
            let enabled = p["enabled"] != true;
            let v = call(
                &api,
                "PATCH",
                &format!("/proxies/{name}"),
                Some(&json!({ "enabled": enabled })),
            )?;
            done(&api, &v, |_| {
                println!(
                    "proxy {name} {}",
                    if enabled { "enabled" } else { "disabled" }
                )
            })
        }
        ControlCommand::Delete { api, name } => {
            let v = call(&api, "DELETE", &format!("/proxies/{name}"), None)?;
            done(&api, &v, |_| println!("deleted proxy {name}"))
        }
        ControlCommand::Toxic(t) => toxic(t),
    }
}

fn toxic(cmd: ToxicCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ToxicCommand::Add {
            api,
            proxy,
            kind,
            toxic_name,
            attribute,
            toxicity,
            upstream,
            downstream: _,
        } => {
            check_toxicity(toxicity)?;
            let mut body = json!({
                "type": kind,
                "stream": if upstream { "upstream" } else { "downstream" },
                "toxicity": toxicity,
                "attributes": attributes(&attribute)?,
            });
            if let Some(n) = toxic_name {
                body["name"] = json!(n);
            }
            let v = call(
                &api,
                "POST",
                &format!("/proxies/{proxy}/toxics"),
                Some(&body),
            )?;
            done(&api, &v, |v| {
                println!("added {} toxic {} on proxy {proxy}", v["stream"], v["name"])
            })
        }
        ToxicCommand::Update {
            api,
            proxy,
            toxic_name,
            attribute,
            toxicity,
        } => {
            let mut body = json!({ "attributes": attributes(&attribute)? });
            if let Some(t) = toxicity {
                check_toxicity(t)?;
                body["toxicity"] = json!(t);
            }
            let path = format!("/proxies/{proxy}/toxics/{toxic_name}");
            let v = call(&api, "PATCH", &path, Some(&body))?;
            done(&api, &v, |_| {
                println!("updated toxic {toxic_name} on proxy {proxy}")
            })
        }
        ToxicCommand::Remove {
            api,
            proxy,
            toxic_name,
        } => {
            let path = format!("/proxies/{proxy}/toxics/{toxic_name}");
            let v = call(&api, "DELETE", &path, None)?;
            done(&api, &v, |_| {
                println!("removed toxic {toxic_name} from proxy {proxy}")
            })
        }
    }
}
