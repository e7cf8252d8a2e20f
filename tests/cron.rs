//! `[[trigger.cron]]`: a component built with wit-bindgen against wit/ (Spin's cron world)
//! fires every second and records each tick in Postgres; each run is a trace of its own,
//! exported over OTLP to a collector double.

use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tessera_e2e::{Checks, HostCommand, TestDb};

#[test]
fn cron_trigger_fires_every_second() {
    let db = TestDb::new();
    let collector = tessera_e2e::TestServer::start("");
    let manifest = format!(
        r#"
spin_manifest_version = 2

[application]
name = "e2e-cron"

[variables]
database_url = {{ required = true, secret = true }}

[[trigger.cron]]
component = "cron-tick"
cron_expression = "*/1 * * * * *"

[[trigger.http]]
route = "/hello"
component = "hello"

[component.cron-tick]
source = "WASM:cron-tick"
allowed_outbound_hosts = ["postgres://{}"]
[component.cron-tick.variables]
db_url = "{{{{ database_url }}}}"

[component.hello]
source = "WASM:hello"
"#,
        db.host_port()
    );
    // cron-tick is a Spin app of its own making: it creates its table.
    let host = HostCommand::new(&db, &manifest)
        .components_as_owner()
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", collector.origin())
        .env("OTEL_BSP_SCHEDULE_DELAY", "50")
        .start();
    let mut c = Checks::new("cron");

    c.check(
        "a run is a root span; its statements are its children",
        || {
            let spans = tessera_e2e::otlp::spans_when(&collector, |spans| {
                spans.iter().any(|run| {
                    run.name == "cron cron-tick"
                        && spans.iter().any(|s| {
                            s.parent == run.span_id
                                && s.attribute("db.operation.name") == Some("INSERT")
                        })
                })
            });
            let run = spans
                .iter()
                .find(|run| {
                    run.name == "cron cron-tick" && spans.iter().any(|s| s.parent == run.span_id)
                })
                .unwrap_or_else(|| panic!("{spans:#?}"));
            assert_eq!(run.parent, "", "a cron run starts its trace: {run:#?}");
            assert!(!run.server, "{run:#?}");
            assert_eq!(run.attribute("tessera.component"), Some("cron-tick"));
            for child in spans.iter().filter(|s| s.parent == run.span_id) {
                assert_eq!(child.trace_id, run.trace_id, "{child:#?}");
                assert_eq!(child.attribute("db.system.name"), Some("postgresql"));
            }
        },
    );

    c.check("at least two ticks recorded within 6 s", || {
        let count = || -> i64 {
            db.query("SELECT count(*) FROM cron_ticks")
                .map(|rows| rows[0].get::<_, i64>(0))
                .unwrap_or(0) // the table appears with the first tick
        };
        let reached =
            tessera_e2e::wait_for(Duration::from_secs(8), || (count() >= 2).then_some(()));
        assert!(
            reached.is_some(),
            "only {} ticks in cron_ticks after 8 s",
            count()
        );
    });

    c.check("ticks carry the schedule's timestamps", || {
        let rows = db
            .query(
                "SELECT fired_at, extract(epoch FROM recorded_at)::float8 FROM cron_ticks ORDER BY id",
            )
            .expect("cron_ticks exists");
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
        let mut previous = None;
        for row in &rows {
            let fired_at: i64 = row.get(0);
            let recorded_at: f64 = row.get(1);
            assert!((now - 120..=now + 5).contains(&fired_at), "fired_at {fired_at}, now {now}");
            assert!(
                (recorded_at - fired_at as f64).abs() < 30.0,
                "recorded {recorded_at} long after firing {fired_at}"
            );
            if let Some(p) = previous {
                assert!(fired_at > p, "fired_at not increasing: {p} then {fired_at}");
            }
            previous = Some(fired_at);
        }
    });

    c.check("http still served alongside cron", || {
        assert_eq!(host.get("/hello").status, 200);
    });

    c.finish(Some(&host));
}
