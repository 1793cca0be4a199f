//! The AWS operations our code makes, counted and timed from the span each SDK client opens
//! around one operation (target `aws_sdk_<service>::operation::…`, named `Service.Operation`):
//! it is created when the call starts and closed once the answer is read, retries included.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use tracing::{span, Metadata, Subscriber};
use tracing_subscriber::{
    filter::filter_fn,
    layer::{Context, Layer},
    registry::LookupSpan,
};

/// One AWS operation: its name (`SQS.SendMessage`) and how long it took.
pub type Call = (&'static str, Duration);

/// Records the operations of the futures run under a subscriber that has its [`layer`](Self::layer).
#[derive(Clone, Default)]
pub struct AwsCalls(Arc<Mutex<Vec<Call>>>);

struct Started(Instant);

fn is_operation(metadata: &Metadata<'_>) -> bool {
    metadata.is_span() && metadata.target().starts_with("aws_sdk_")
}

impl AwsCalls {
    /// The layer that records into this; it enables only the SDK's operation spans, so the
    /// rest of the code runs as it does without it.
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
    fn on_new_span(&self, _: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Started(Instant::now()));
        }
    }

    fn on_close(&self, id: span::Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let started = span.extensions().get::<Started>().map(|started| started.0);
        if let Some(at) = started {
            let call = (span.metadata().name(), at.elapsed());
            (self.0)
                .0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(call);
        }
    }
}
