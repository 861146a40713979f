use anyhow::{bail, Result};
use clap::{Parser, Subcommand};
use gpaxos_node::app::Reply;
use gpaxos_node::client::Client;
use gpaxos_node::config_file::{CStructKind, ConfigFile};
use gpaxos_node::cstruct::{History, Sequence};
use gpaxos_node::net::certs;
use gpaxos_node::net::cluster_arg::{parse_cluster, parse_node, resolve};
use gpaxos_node::protocol::NodeId;
use gpaxos_node::server::{self, ServerConfig};
use gpaxos_node::Op;
use std::net::SocketAddr;
use std::path::PathBuf;

/// A Generalized Paxos node serving a replicated kv / bank state machine
/// over QUIC with mutual TLS.
#[derive(Parser)]
#[command(name = "gpaxos-node", version)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs a node.
    Run {
        /// This node's name, as in --cluster (n1, n2, ...).
        #[arg(long)]
        id: String,
        /// Every node: n1=HOST:PORT,n2=HOST:PORT,... One UDP port per node
        /// serves peers and clients.
        #[arg(long)]
        cluster: String,
        /// The data directory (write-ahead log).
        #[arg(long)]
        data: PathBuf,
        /// The directory written by `gpaxos-node certs`.
        #[arg(long)]
        tls: PathBuf,
        /// The address to bind, if not the one in --cluster.
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// A TOML file of protocol settings (see the README).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Serve Prometheus metrics at http://ADDR/metrics.
        #[arg(long, value_name = "ADDR")]
        metrics: Option<SocketAddr>,
    },
    /// Runs one client operation against the cluster and prints its result.
    Client {
        #[arg(long)]
        cluster: String,
        #[arg(long)]
        tls: PathBuf,
        /// The node to ask first (n1, n2, ...).
        #[arg(long)]
        node: Option<String>,
        #[command(subcommand)]
        op: ClientOp,
    },
    /// Writes a cluster CA, node certificates and a client certificate:
    /// OUT/ca.pem, OUT/client.{pem,key}, one directory OUT/<node> per node
    /// (ca.pem, <node>.pem, <node>.key: all a node is given), and the CA's
    /// key in CA_DIR, apart.
    Certs {
        #[arg(long)]
        out: PathBuf,
        /// Node names: n1,n2,...
        #[arg(long, default_value = "n1,n2,n3,n4,n5")]
        nodes: String,
        /// Where the CA's certificate and key go (default OUT/ca). Never
        /// give it to a node.
        #[arg(long)]
        ca_dir: Option<PathBuf>,
        /// Days node and client certificates are valid.
        #[arg(long, default_value_t = 365)]
        days: u32,
        /// Days a new CA is valid.
        #[arg(long, default_value_t = 3650)]
        ca_days: u32,
        /// Issue fresh node and client certificates from the CA in CA_DIR,
        /// keeping every existing key, instead of making a new CA.
        #[arg(long)]
        renew: bool,
    },
    /// Exits 0 if the node at ADDR answers a status request (for container
    /// healthchecks).
    Health {
        #[arg(long, default_value = "127.0.0.1:7000")]
        addr: String,
        /// The node's name (its certificate must name it).
        #[arg(long)]
        name: String,
        /// The node's own directory from `certs` (its certificate acts as
        /// the client), or a directory with client.pem and client.key.
        #[arg(long)]
        tls: PathBuf,
    },
}

#[derive(Subcommand)]
enum ClientOp {
    Get {
        key: String,
    },
    Put {
        key: String,
        value: String,
    },
    /// Sets KEY to TO if it holds FROM (`-` for absent).
    Cas {
        key: String,
        from: String,
        to: String,
    },
    Append {
        key: String,
        value: String,
    },
    Transfer {
        from: String,
        to: String,
        amount: i64,
    },
    /// Reads all listed accounts at once: a,b,c.
    Balances {
        accounts: String,
    },
    /// The asked node's role, ballot and counters.
    Status,
    /// The asked node's learned commands from position FROM on.
    Learned {
        #[arg(long, default_value_t = 0)]
        from: u64,
        #[arg(long, default_value_t = 1000)]
        max: u32,
    },
}

fn print_reply(reply: &Reply) {
    match reply {
        Reply::Value(Some(v)) => println!("{v}"),
        Reply::Value(None) => println!("(absent)"),
        Reply::Done | Reply::Duplicate => println!("ok"),
        Reply::Swapped(true) | Reply::Moved(true) => println!("ok"),
        Reply::Swapped(false) => println!("failed: the value differed"),
        Reply::Moved(false) => println!("failed: insufficient funds"),
        Reply::Balances(b) => {
            for (k, v) in b {
                println!("{k} {v}");
            }
        }
    }
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,quinn=warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let code = match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            2
        }
    };
    std::process::exit(code);
}

fn real_main() -> Result<i32> {
    let cli = Cli::parse();
    if !matches!(cli.command, Cmd::Run { .. }) {
        // A command whose output is piped into `head` should end quietly
        // when the pipe closes, as other command-line tools do, rather than
        // panic in println!. The server keeps Rust's default (errors, not
        // signals) for its sockets.
        // SAFETY: setting a signal disposition before any thread starts.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    match cli.command {
        Cmd::Run {
            id,
            cluster,
            data,
            tls,
            listen,
            config,
            metrics,
        } => {
            let cluster = parse_cluster(&cluster)?;
            let id = parse_node(&id)?;
            if id >= cluster.len() {
                bail!(
                    "--id n{} is not in a cluster of {} nodes",
                    id + 1,
                    cluster.len()
                );
            }
            let file = match &config {
                Some(path) => ConfigFile::load(path)?,
                None => ConfigFile::default(),
            };
            let (protocol, kind, tick) = file.protocol(cluster.len())?;
            let cfg = ServerConfig {
                id: id as NodeId,
                cluster,
                data_dir: data,
                tls_dir: tls,
                listen,
                protocol,
                tick,
                accounts: file.accounts.iter().map(|(k, v)| (k.clone(), *v)).collect(),
                metrics,
            };
            rt.block_on(async move {
                let shutdown = async {
                    let _ = tokio::signal::ctrl_c().await;
                };
                match kind {
                    CStructKind::History => server::run::<History>(cfg, shutdown).await,
                    CStructKind::Sequence => server::run::<Sequence>(cfg, shutdown).await,
                }
            })?;
            Ok(0)
        }
        Cmd::Certs {
            out,
            nodes,
            ca_dir,
            days,
            ca_days,
            renew,
        } => {
            let names: Vec<String> = nodes
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect();
            for n in &names {
                parse_node(n)?;
            }
            if days == 0 || ca_days == 0 {
                bail!("--days and --ca-days must be at least 1");
            }
            let options = certs::CertOptions {
                ca_dir,
                days,
                ca_days,
            };
            let ca_dir = options.ca_dir.clone().unwrap_or_else(|| out.join("ca"));
            if renew {
                certs::renew(&out, &names, &options)?;
            } else {
                certs::generate_with(&out, &names, &options)?;
            }
            println!(
                "{} {} node certificates and a client certificate in {} (valid {days} days); \
                 the CA's key is in {}: keep it there, give each node only its own directory",
                if renew { "renewed" } else { "wrote" },
                names.len(),
                out.display(),
                ca_dir.display()
            );
            Ok(0)
        }
        Cmd::Health { addr, name, tls } => {
            let i = parse_node(&name)?;
            let addr = resolve(&addr)?;
            // A node's own certificate may act as a client, so a container
            // needs no client key for its healthcheck.
            let creds =
                certs::load(&tls, &name).or_else(|e| certs::load_client(&tls).map_err(|_| e))?;
            rt.block_on(async move {
                let mut nodes = vec![addr; i + 1];
                nodes[i] = addr;
                let mut client = Client::new(&creds, nodes, 0)?;
                client.retry.attempt = std::time::Duration::from_secs(2);
                let s = client.status(i).await?;
                println!(
                    "{} {} mbal={} learned={}",
                    s.node, s.role, s.mbal, s.learned
                );
                anyhow::Ok(0)
            })
        }
        Cmd::Client {
            cluster,
            tls,
            node,
            op,
        } => {
            let addrs = parse_cluster(&cluster)?
                .iter()
                .map(|a| resolve(a))
                .collect::<Result<Vec<_>>>()?;
            let creds = certs::load_client(&tls)?;
            let first = match &node {
                Some(n) => parse_node(n)?,
                None => 0,
            };
            if first >= addrs.len() {
                bail!("--node {} is not in the cluster", node.unwrap_or_default());
            }
            // A client id from the clock keeps ids unique across runs of the
            // CLI (retries within one run keep their id).
            let id = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_nanos() as u64
                >> 8;
            rt.block_on(async move {
                let mut client = Client::new(&creds, addrs, id)?;
                client.prefer(first);
                let op = match op {
                    ClientOp::Status => {
                        let s = client.status(first).await?;
                        println!("{}", serde_json_like(&s));
                        return anyhow::Ok(0);
                    }
                    ClientOp::Learned { from, max } => {
                        let (total, cmds) = client.learned(first, from, max).await?;
                        println!(
                            "# {} of {total} learned commands from position {from}",
                            cmds.len()
                        );
                        for (i, c) in cmds.iter().enumerate() {
                            println!("{}\t{}\t{:?}", from + i as u64, c.id, c.op);
                        }
                        return anyhow::Ok(0);
                    }
                    ClientOp::Get { key } => Op::Get { key },
                    ClientOp::Put { key, value } => Op::Put { key, value },
                    ClientOp::Cas { key, from, to } => Op::Cas {
                        key,
                        from: if from == "-" { None } else { Some(from) },
                        to,
                    },
                    ClientOp::Append { key, value } => Op::Append { key, value },
                    ClientOp::Transfer { from, to, amount } => Op::Transfer { from, to, amount },
                    ClientOp::Balances { accounts } => Op::Balances {
                        accounts: accounts.split(',').map(|s| s.trim().to_owned()).collect(),
                    },
                };
                let reply = client.execute(op).await?;
                print_reply(&reply);
                anyhow::Ok(match reply {
                    Reply::Swapped(false) | Reply::Moved(false) => 1,
                    _ => 0,
                })
            })
        }
    }
}

fn serde_json_like(s: &gpaxos_node::client::Status) -> String {
    format!(
        "node={} role={} mbal={} fast={} leader={} closed_below={} learned={} pending={} fsyncs={} log_bytes={}\nstats={:?}",
        s.node, s.role, s.mbal, s.fast, s.leader, s.closed_below, s.learned, s.pending, s.fsyncs, s.log_bytes, s.stats
    )
}
