//! Logging and metrics: one tracing subscriber for the process, JSON in production or pretty for
//! people, and the Prometheus recorder ([`metrics`]).
//!
//! JSON lines carry the fields of the spans they happen in: `span` is the innermost one and
//! `spans` the whole chain, so a line logged inside a job names the job id, kind, installation,
//! repository and pull request, and a line logged during intake the delivery id and event.

pub mod metrics;

use crate::config::LogFormat;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Installs the global subscriber; `RUST_LOG` filters (default `info`). Safe to call twice (the
/// second call is ignored), which tests rely on.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let output = match format {
        LogFormat::Json => json_layer(std::io::stderr).boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let _already_installed = tracing_subscriber::registry()
        .with(filter)
        .with(output)
        .with(LogEventCounter)
        .try_init();
}

/// The JSON output: one object a line, the event's fields at the top level, the span context
/// under `span` and `spans`.
pub fn json_layer<S, W>(writer: W) -> impl Layer<S> + Send + Sync
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(true)
        .with_writer(writer)
}

/// Counts warnings and errors in the metrics, so an alert can fire on a rising error rate
/// without parsing logs.
pub struct LogEventCounter;

impl<S: Subscriber> Layer<S> for LogEventCounter {
    fn on_event(&self, event: &Event<'_>, _context: Context<'_, S>) {
        match *event.metadata().level() {
            Level::ERROR => metrics::record_log_event("error"),
            Level::WARN => metrics::record_log_event("warn"),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'w self) -> Self::Writer {
            self.clone()
        }
    }

    #[test]
    fn json_lines_carry_the_fields_of_every_enclosing_span() {
        let buffer = Buffer::default();
        let subscriber = tracing_subscriber::registry().with(json_layer(buffer.clone()));
        tracing::subscriber::with_default(subscriber, || {
            let delivery = tracing::info_span!("delivery", delivery_id = "d-1", event = "push");
            let _delivery = delivery.enter();
            let job = tracing::info_span!("job", job_id = 7, repository = "acme/web", pr = 3);
            let _job = job.enter();
            tracing::error!(error = "boom", "job failed for good");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["level"], "ERROR");
        assert_eq!(line["error"], "boom");
        assert_eq!(line["message"], "job failed for good");
        assert_eq!(line["span"]["job_id"], 7);
        assert_eq!(line["span"]["repository"], "acme/web");
        assert_eq!(line["spans"][0]["delivery_id"], "d-1");
        assert_eq!(line["spans"][1]["pr"], 3);
    }
}
