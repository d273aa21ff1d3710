//! `SocketIoConfig::slow_handler`: a handler still running past the
//! threshold is logged at `warn` (with its namespace, socket and event)
//! while it runs, and again when it ends; a quick one is not.

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use async_tungstenite::tungstenite::Message;
use futures_util::StreamExt;
use socketio::{SocketIo, SocketIoConfig, SocketRef};
use suite::raw::socketio;
use suite::{sleep, within, TestRuntime};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

/// Every `warn` event of the process: its fields, as `name=value` text.
fn warnings() -> &'static Mutex<Vec<String>> {
    static WARNINGS: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    WARNINGS.get_or_init(|| {
        let subscriber = tracing_subscriber::registry().with(Capture);
        tracing::subscriber::set_global_default(subscriber).expect("one subscriber");
        Mutex::default()
    })
}

struct Capture;

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={value:?} ", field.name()));
    }
}

impl<S: tracing::Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if *event.metadata().level() == tracing::Level::WARN {
            let mut fields = Fields(String::new());
            event.record(&mut fields);
            warnings().lock().unwrap().push(fields.0);
        }
    }
}

fn warned_of(event: &str) -> Vec<String> {
    warnings()
        .lock()
        .unwrap()
        .iter()
        .filter(|w| w.contains(&format!("handler={event:?}")))
        .cloned()
        .collect()
}

async fn a_slow_handler_is_reported_while_it_runs_and_when_it_ends<R: TestRuntime>(rt: R) {
    warnings();
    // Event names of this runtime's own: the two runtimes' tests share the
    // process's subscriber.
    let runtime = std::any::type_name::<R>().rsplit("::").next().unwrap();
    let slow = format!("slow-{runtime}");
    let quick = format!("quick-{runtime}");
    let mut config = SocketIoConfig::default();
    config.slow_handler = Some(Duration::from_millis(100));
    let io = SocketIo::new(rt, config);
    let (slow_name, quick_name) = (slow.clone(), quick.clone());
    io.on_connection("/", move |socket: SocketRef| {
        let (slow, quick) = (slow_name.clone(), quick_name.clone());
        async move {
            socket.on(&slow, |socket: SocketRef| async move {
                sleep(Duration::from_millis(400)).await;
                let _ = socket.emit("done", &()).await;
            });
            socket.on(&quick, |socket: SocketRef| async move {
                let _ = socket.emit("done", &()).await;
            });
        }
    });
    let addr = rt.serve(io).await;
    let mut client = socketio(rt, addr, "/", None).await;
    client
        .send(Message::text(format!(r#"42["{quick}"]"#)))
        .await
        .unwrap();
    client
        .send(Message::text(format!(r#"42["{slow}"]"#)))
        .await
        .unwrap();
    // The warning comes while the slow handler still runs.
    within("the warning", async {
        while warned_of(&slow).is_empty() {
            sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    for _ in 0..2 {
        let done = within("the handlers", client.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(done.to_text().unwrap(), r#"42["done",null]"#);
    }
    let warned = within("the second warning", async {
        loop {
            let warned = warned_of(&slow);
            if warned.len() == 2 {
                return warned;
            }
            sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(warned[0].contains("still running"), "{warned:?}");
    assert!(
        warned[0].contains("nsp=/ ") && warned[0].contains("socket="),
        "{warned:?}"
    );
    assert!(warned[1].contains("finished") && warned[1].contains("took="));
    assert!(warned_of(&quick).is_empty(), "a quick handler was reported");
}

suite::on_each_runtime!(a_slow_handler_is_reported_while_it_runs_and_when_it_ends);
