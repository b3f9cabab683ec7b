//! Noticing a consumer the broker has stopped feeding.
//!
//! After a broker restart, a consumer can be registered on a quorum queue
//! that is still recovering and then receive nothing, with no cancel
//! notification, while messages pile up (seen with RabbitMQ 3.10 on
//! `stop_app`/`start_app`). Nothing would be lost, but nothing would flow
//! either. So consumers check: when they have nothing in hand and nothing
//! has arrived for [`STALL_AFTER`], they ask the broker how many messages
//! are ready; if any are, they subscribe again.

use std::time::Duration;

use lapin::Connection;
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;

/// How long an idle consumer waits before checking the queue.
pub const STALL_AFTER: Duration = Duration::from_secs(5);

/// How many messages are ready in `queue` (a passive declare on a channel
/// of its own, so a failure cannot close the consumer's channel).
pub async fn ready_messages(connection: &Connection, queue: &str) -> Result<u32, lapin::Error> {
    let channel = connection.create_channel().await?;
    let queue = channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    let _ = channel.close(200, "checked".into()).await;
    Ok(queue.message_count())
}

/// Whether a consumer that has nothing in hand and has received nothing for
/// [`STALL_AFTER`] is stalled: true if the queue has messages ready (or
/// cannot even be asked, which calls for a new connection anyway).
pub async fn stalled(connection: &Connection, queue: &str) -> bool {
    match ready_messages(connection, queue).await {
        Ok(ready) => ready > 0,
        Err(_) => true,
    }
}
