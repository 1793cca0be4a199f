//! The AWS operations our code makes, counted and timed from the span `shared::aws` opens
//! around each (target `aws`, fields `service` and `operation`): it is created when the call
//! starts and closed once the answer is read, retries included.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use tracing::{
    field::{Field, Visit},
    span, Metadata, Subscriber,
};
use tracing_subscriber::{
    filter::filter_fn,
    layer::{Context, Layer},
    registry::LookupSpan,
};

/// One AWS operation: its name (`SQS.SendMessage`) and how long it took.
pub type Call = (String, Duration);

/// Records the operations of the futures run under a subscriber that has its [`layer`](Self::layer).
#[derive(Clone, Default)]
pub struct AwsCalls(Arc<Mutex<Vec<Call>>>);

struct Started(Instant, String);

fn is_operation(metadata: &Metadata<'_>) -> bool {
    metadata.is_span() && metadata.target() == "aws"
}

/// The span's `service` and `operation` fields.
#[derive(Default)]
struct Name {
    service: String,
    operation: String,
}

impl Visit for Name {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "service" => self.service = value.to_owned(),
            "operation" => self.operation = value.to_owned(),
            _ => {}
        }
    }

    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

impl AwsCalls {
    /// The layer that records into this; it enables only the operation spans, so the rest of
    /// the code runs as it does without it.
    pub fn layer<S>(&self) -> impl Layer<S>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        Recorder(self.clone()).with_filter(filter_fn(is_operation))
    }

    /// The operations recorded since the last take, in the order they finished.
    pub fn take(&self) -> Vec<Call> {
        std::mem::take(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

struct Recorder(AwsCalls);

impl<S> Layer<S> for Recorder
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attributes: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        let mut name = Name::default();
        attributes.record(&mut name);
        if let Some(span) = ctx.span(id) {
            let name = format!("{}.{}", name.service, name.operation);
            span.extensions_mut().insert(Started(Instant::now(), name));
        }
    }

    fn on_close(&self, id: span::Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let started = span.extensions_mut().remove::<Started>();
        if let Some(Started(at, name)) = started {
            let call = (name, at.elapsed());
            (self.0)
                .0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(call);
        }
    }
}
