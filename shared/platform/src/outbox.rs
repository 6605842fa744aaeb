//! The outbox's sweeper (housekeeping): sends the messages a sender wrote with its change and
//! did not get to send (`amanar_core::outbox`).

use std::time::Duration;

use amanar_core::Ports;
use amanar_core::context::Task;
use amanar_core::outbox;
use amanar_core::workflow::SweepPolicy;

/// Stale after [`outbox::STALE_AFTER`]; at most 1000 per sweep; 50 s of work (housekeeping runs
/// every 5 minutes, with a 120 s timeout in AWS).
const POLICY: SweepPolicy = SweepPolicy {
    stale_after: outbox::STALE_AFTER,
    limit: 1000,
    budget: Duration::from_secs(50),
};

pub const RESEND: Task<Ports> = Task {
    name: "resend-outbox",
    run: |ports| {
        Box::pin(async move {
            outbox::sweep(&*ports.table, &*ports.queue, ports.clock.now(), POLICY)
                .await
                .map_err(|e| e.to_string())
        })
    },
};
