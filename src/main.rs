//! The `followfund` command: serve the ledger, import and export its log, verify its chain.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use clap::{Parser, Subcommand};
use followfund::admin;
use followfund::exchange::{self, IMPORT_BATCH_EVENTS_DEFAULT};
use followfund::load::{self, LoadPlan};
use followfund::runner::Runner;
use followfund::store::{Actor, Store, StoreOptions};
use followfund_contracts::{Nation, OdsCode, Role};
use indicatif::{ProgressBar, ProgressStyle};

/// Followfund: an event-sourced funding ledger for social prescribing.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Where the log lives: `sqlite://PATH` (or a plain path) or `postgres://…`.
    #[arg(
        long,
        global = true,
        env = "DATABASE_URL",
        default_value = "sqlite://followfund.db"
    )]
    database_url: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP service: GraphQL at /graphql, GraphiQL at /, health at /health.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Load the demonstration data set into an empty log and print a token for each role.
        #[arg(long)]
        demo: bool,
    },
    /// Append events from an NDJSON file (one event per line), in atomic batches.
    Import {
        /// The file to read; `-` for standard input.
        file: PathBuf,
        /// Lines per atomic batch: a bad line stops the import and nothing of its batch is written.
        #[arg(long, default_value_t = IMPORT_BATCH_EVENTS_DEFAULT)]
        batch_events: usize,
    },
    /// Write the log as NDJSON, importable again into an identical chain.
    Export {
        /// The file to write; standard output if absent.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// The first position to write.
        #[arg(long, default_value_t = 1)]
        from: u64,
    },
    /// Walk the hash chain; exit 0 when intact, 1 naming the first bad position otherwise.
    Verify,
    /// Count events, streams and types.
    Stats,
    /// Register organisations.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Publish funding terms (budgets, agreements, amendments, grants) and ARRS rules from a
    /// TOML file.
    #[command(subcommand)]
    Contracts(ContractsCommand),
    /// ARRS link-worker reimbursement.
    #[command(subcommand)]
    Arrs(ArrsCommand),
    /// Generate a synthetic financial year (2022/23), the same for the same seed, every event
    /// decided by the command layer: as NDJSON to a file or standard output, or straight into the
    /// log with --into-store.
    Simulate {
        /// How big a year.
        #[arg(long, value_enum, default_value = "small")]
        scale: followfund::simulate::Scale,
        /// The seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Where to write NDJSON; standard output if absent.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Append to the log at --database-url instead of writing NDJSON.
        #[arg(long)]
        into_store: bool,
    },
    /// Settle what an anchor owes its providers for work dated on or before a date; one run per
    /// anchor and date, so running it again prints the same run.
    Pay {
        /// The anchor's code.
        #[arg(long)]
        anchor: String,
        /// The last day of work to settle (YYYY-MM-DD).
        #[arg(long)]
        through: chrono::NaiveDate,
    },
    /// Record as declined (no response) every funded prescription its provider left unanswered
    /// past the agreement's response window; `serve` does this every minute.
    Sweep,
    /// A provider's remittance advice for a payment run, as CSV.
    Remittance {
        /// The run's id, as `pay` prints it.
        #[arg(long)]
        run: uuid::Uuid,
        /// The provider's code.
        #[arg(long)]
        provider: String,
    },
    /// Issue, list and revoke API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Append synthetic referral events from many tasks, printing `ack <event_id> <position>`
    /// for each acknowledged event.
    Load {
        /// Events in all.
        #[arg(long, default_value_t = 10_000)]
        events: u64,
        /// Tasks appending at once.
        #[arg(long, default_value_t = 16)]
        appenders: usize,
        /// Events per append.
        #[arg(long, default_value_t = 1)]
        batch_events: usize,
    },
}

#[derive(Subcommand)]
enum OrgCommand {
    /// Register an organisation (again, to change its name, role, nation or parent).
    Add {
        /// Its ODS code, or our own id in the same shape (3 to 10 capital letters and digits).
        #[arg(long)]
        ods: String,
        /// Its name.
        #[arg(long)]
        name: String,
        /// commissioner, anchor, provider, pcn, investor, auditor or admin.
        #[arg(long)]
        role: Role,
        /// england, scotland, wales or northern_ireland.
        #[arg(long, default_value = "england", value_parser = parse_nation)]
        nation: Nation,
        /// The organisation it reports to (the ICB of a PCN, the anchor of a provider).
        #[arg(long)]
        parent: Option<String>,
    },
}

#[derive(Subcommand)]
enum ArrsCommand {
    /// A PCN's claim for a month as CSV: a line per link worker (days in post, maximum, supplier
    /// contribution, actual cost, claimable, cut), the month's limit and the PCN's total.
    Claim {
        /// The PCN's code, `U` and five digits.
        #[arg(long)]
        pcn: String,
        /// The month, YYYY-MM.
        #[arg(long)]
        month: String,
    },
}

#[derive(Subcommand)]
enum ContractsCommand {
    /// Check a terms file and append all of it at once; an invalid table is refused with its
    /// line and field, and nothing is written. Publishing the same file again writes nothing.
    Publish {
        /// The TOML file (examples in contracts/rules/examples/).
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Issue a bearer token for a registered organisation; the secret is printed once.
    Create {
        /// The organisation's code.
        #[arg(long)]
        org: String,
        /// The role, which must be the one the organisation is registered in.
        #[arg(long)]
        role: Role,
    },
    /// Revoke a token by its id.
    Revoke {
        /// The token id printed at creation or by `token list`.
        token_id: uuid::Uuid,
    },
    /// List tokens (ids, organisations, roles; never secrets).
    List,
}

fn parse_nation(text: &str) -> Result<Nation, String> {
    serde_json::from_value(serde_json::Value::from(text))
        .map_err(|_| "expected england, scotland, wales or northern_ireland".to_string())
}

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    followfund::allocator::purge_promptly();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::Simulate {
        scale,
        seed,
        output,
        into_store: false,
    } = &cli.command
    {
        return simulate_ndjson(*scale, *seed, output.as_deref());
    }
    let store = Store::open(&cli.database_url, StoreOptions::default())
        .await
        .with_context(|| format!("opening the log at {}", cli.database_url))?;
    match cli.command {
        Command::Serve { listen, demo } => {
            if demo {
                demo_prepare(&store).await?;
            }
            followfund::server::serve(store, listen).await?
        }
        Command::Org(OrgCommand::Add {
            ods,
            name,
            role,
            nation,
            parent,
        }) => {
            let position =
                admin::organisation_add(&store, &ods, &name, role, nation, parent.as_deref())
                    .await?;
            println!("registered {ods} as {role} at position {position}");
        }
        Command::Token(command) => return token(&store, command).await,
        Command::Pay { anchor, through } => {
            let anchor = OdsCode::parse(&anchor)?;
            let runner = Runner::start(store.clone()).await?;
            let outcome = followfund::payments::pay(&store, &runner, &anchor, through).await?;
            let run = &outcome.run;
            let verb = if outcome.written {
                "recorded"
            } else {
                "already recorded"
            };
            println!(
                "run {} {verb} at position {}: {} lines",
                run.run_id,
                run.position,
                run.lines.len()
            );
            for line in run.lines.iter() {
                println!(
                    "  {:<10} {} {:?} £{}",
                    line.provider.as_str(),
                    line.prescription_id,
                    line.kind,
                    line.amount.as_decimal()
                );
            }
        }
        Command::Arrs(ArrsCommand::Claim { pcn, month }) => {
            let pcn = followfund_contracts::PcnCode::parse(&pcn)?;
            let month: followfund_contracts::terms::YearMonth = month.parse()?;
            let runner = Runner::start(store.clone()).await?;
            let models = runner.read();
            match models.arrs.month(&pcn, month) {
                Ok(figures) => print!("{}", followfund::arrs::claim_csv(&pcn, &figures)),
                Err(refused) => {
                    eprintln!("{refused}");
                    return Ok(ExitCode::from(1));
                }
            }
        }
        Command::Simulate { scale, seed, .. } => {
            let bar = counting_bar();
            let started = std::time::Instant::now();
            let (written, _) =
                followfund::simulate::into_store(&store, scale, seed, |n| bar.set_position(n))
                    .await?;
            bar.finish_and_clear();
            let seconds = started.elapsed().as_secs_f64();
            eprintln!(
                "simulated and appended {written} events in {seconds:.1} s ({:.0} events/s)",
                written as f64 / seconds
            );
        }
        Command::Sweep => {
            let runner = Runner::start(store.clone()).await?;
            let positions =
                followfund::responses::decline_unanswered(&store, &runner, chrono::Utc::now())
                    .await?;
            println!(
                "{} unanswered prescriptions declined at positions {positions:?}",
                positions.len()
            );
        }
        Command::Remittance { run, provider } => {
            let provider = OdsCode::parse(&provider)?;
            let runner = Runner::start(store.clone()).await?;
            let models = runner.read();
            let Some(recorded) = models.ledger.run(run) else {
                eprintln!("no payment run {run} is recorded");
                return Ok(ExitCode::from(1));
            };
            print!(
                "{}",
                followfund::payments::remittance_csv(&models, recorded, &provider)
            );
        }
        Command::Contracts(ContractsCommand::Publish { file }) => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            match admin::contracts_publish(&store, &text).await {
                Ok(published) if published.written => {
                    println!(
                        "published {} events at positions {:?}",
                        published.positions.len(),
                        published.positions
                    );
                }
                Ok(published) => {
                    println!("already published, at positions {:?}", published.positions)
                }
                Err(error) => {
                    eprintln!("{}: {error}", file.display());
                    return Ok(ExitCode::from(1));
                }
            }
        }
        Command::Import { file, batch_events } => {
            followfund::allocator::purge_lazily();
            return import(&store, &file, batch_events).await;
        }
        Command::Export { output, from } => {
            let count = match output {
                Some(path) => {
                    let mut out = BufWriter::new(
                        File::create(&path)
                            .with_context(|| format!("creating {}", path.display()))?,
                    );
                    exchange::export(&store, from, &mut out).await?
                }
                None => {
                    exchange::export(&store, from, &mut BufWriter::new(std::io::stdout().lock()))
                        .await?
                }
            };
            eprintln!("exported {count} events");
        }
        Command::Verify => {
            let report = store.verify().await?;
            return Ok(match report.first_fault {
                None => {
                    println!(
                        "intact: {} events, head hash {}",
                        report.events_checked, report.head_hash
                    );
                    ExitCode::SUCCESS
                }
                Some(fault) => {
                    println!("broken at position {}: {}", fault.position, fault.reason);
                    println!("{} events before it are intact", report.events_checked);
                    ExitCode::from(1)
                }
            });
        }
        Command::Stats => {
            let stats = store.stats().await?;
            println!("events          {}", stats.events);
            println!("head position   {}", stats.head_position);
            println!("streams         {}", stats.streams);
            for (event_type, count) in stats.events_by_type {
                println!("  {event_type:<28} {count}");
            }
        }
        Command::Load {
            events,
            appenders,
            batch_events,
        } => {
            let plan = LoadPlan {
                events,
                appenders,
                batch_events: batch_events.max(1),
            };
            let out: Arc<Mutex<dyn Write + Send>> = Arc::new(Mutex::new(std::io::stdout()));
            let started = std::time::Instant::now();
            load::run(&store, plan, out).await?;
            let seconds = started.elapsed().as_secs_f64();
            eprintln!(
                "appended {events} events in {seconds:.2} s ({:.0} events/s)",
                events as f64 / seconds
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn simulate_ndjson(
    scale: followfund::simulate::Scale,
    seed: u64,
    output: Option<&std::path::Path>,
) -> anyhow::Result<ExitCode> {
    let bar = counting_bar();
    let started = std::time::Instant::now();
    let progress = |n| bar.set_position(n);
    let written = match output {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("creating {}", path.display()))?;
            let mut out = std::io::BufWriter::new(file);
            let written = followfund::simulate::write_ndjson(scale, seed, &mut out, progress)?;
            out.flush()?;
            written
        }
        None => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let written = followfund::simulate::write_ndjson(scale, seed, &mut out, progress)?;
            out.flush()?;
            written
        }
    };
    bar.finish_and_clear();
    eprintln!(
        "simulated {written} events in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// A progress display for a count with no known end, on standard error.
fn counting_bar() -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {pos} events {per_sec} {elapsed}")
            .expect("a valid template"),
    );
    bar
}

async fn demo_prepare(store: &Store) -> anyhow::Result<()> {
    if followfund::demo::load(store, 1).await? {
        eprintln!(
            "loaded the demonstration data set ({} referrals)",
            followfund::demo::DEMO_REFERRALS
        );
    }
    println!(
        "Demonstration tokens (send as `Authorization: Bearer <token>`; GraphiQL has a headers tab):"
    );
    for (code, role, secret) in followfund::demo::tokens(store).await? {
        println!("  {:<13} {code:<7} {secret}", role.as_str());
    }
    Ok(())
}

async fn token(store: &Store, command: TokenCommand) -> anyhow::Result<ExitCode> {
    match command {
        TokenCommand::Create { org, role } => {
            let (secret, record) = admin::token_create(store, &org, role).await?;
            println!("token id {}", record.token_id);
            println!("{secret}");
            eprintln!("keep the token safe: it is shown once and stored only as a hash");
        }
        TokenCommand::Revoke { token_id } => {
            if !store.token_revoke(token_id, chrono::Utc::now()).await? {
                eprintln!("no live token has id {token_id}");
                return Ok(ExitCode::from(1));
            }
            println!("revoked {token_id}");
            let delay_ms = followfund::api::auth::REVOCATION_DELAY_MS;
            eprintln!("running servers refuse it within about {delay_ms} ms");
        }
        TokenCommand::List => {
            for record in store.tokens().await? {
                let state = record
                    .revoked_at
                    .map_or("live".to_string(), |at| format!("revoked {at}"));
                println!(
                    "{}  {:<10} {:<12} {}",
                    record.token_id, record.organisation, record.role, state
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn import(store: &Store, file: &PathBuf, batch_events: usize) -> anyhow::Result<ExitCode> {
    let (reader, bytes_total): (Box<dyn std::io::BufRead>, u64) = if file.as_os_str() == "-" {
        (Box::new(BufReader::new(std::io::stdin())), 0)
    } else {
        let handle = File::open(file).with_context(|| format!("opening {}", file.display()))?;
        let size = handle.metadata()?.len();
        (Box::new(BufReader::new(handle)), size)
    };
    let bar = ProgressBar::new(bytes_total);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
            .expect("a valid template"),
    );
    let result = exchange::import(store, reader, batch_events, &Actor::admin_cli(), |bytes| {
        bar.set_position(bytes)
    })
    .await;
    bar.finish_and_clear();
    match result {
        Ok(summary) => {
            println!(
                "imported {} lines: {} events written, {} already present",
                summary.lines, summary.events_written, summary.events_already_present
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!("import stopped: {error}");
            Ok(ExitCode::from(1))
        }
    }
}
