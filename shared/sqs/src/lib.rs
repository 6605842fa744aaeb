//! `SqsQueue`: the Queue port on Amazon SQS. Queue URLs come from configuration; dead-lettering is
//! SQS's own redrive policy (declared in template.yaml, or by [`SqsQueue::create_queues`] on emulators).

use std::collections::HashMap;
use std::time::Duration;

use amanar_core::queue::{self, Queue, QueueError, QueueName, Received};
use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};

#[derive(Clone)]
pub struct SqsQueue {
    client: Client,
    urls: HashMap<QueueName, String>,
}

fn backend_error<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    operation: &str,
    error: SdkError<E, R>,
) -> QueueError {
    let code = error.code().unwrap_or_default().to_owned();
    if code.contains("ReceiptHandleIsInvalid")
        || code.contains("InvalidParameterValue")
            && error.message().unwrap_or_default().contains("receipt")
    {
        return QueueError::StaleReceipt;
    }
    let message = error
        .message()
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{error:?}"));
    QueueError::Backend(format!("SQS {operation} failed: {code} {message}"))
}

/// Whole seconds for SQS, rounding up so a wait or a delay is never shorter than asked.
fn seconds(duration: Duration) -> i32 {
    duration.as_millis().div_ceil(1000) as i32
}

impl SqsQueue {
    pub fn new(client: Client, urls: HashMap<QueueName, String>) -> Self {
        Self { client, urls }
    }

    fn url(&self, queue: QueueName) -> Result<&str, QueueError> {
        self.urls
            .get(&queue)
            .map(String::as_str)
            .ok_or_else(|| QueueError::Invalid(format!("no URL is configured for queue {queue}")))
    }

    /// Creates every queue under a name prefix, each with its dead-letter queue and redrive policy as
    /// in template.yaml, and returns their URLs (for emulators and tests).
    pub async fn create_queues(
        client: &Client,
        prefix: &str,
    ) -> Result<HashMap<QueueName, String>, QueueError> {
        let mut urls = HashMap::new();
        let dead_letter_queues = QueueName::ALL
            .into_iter()
            .filter(|q| q.dead_letter_queue().is_none());
        for dlq in dead_letter_queues {
            let output = client
                .create_queue()
                .queue_name(format!("{prefix}{dlq}"))
                .send()
                .await
                .map_err(|e| backend_error("CreateQueue", e))?;
            urls.insert(dlq, output.queue_url.unwrap_or_default());
        }
        for queue in QueueName::ALL {
            let Some(dlq) = queue.dead_letter_queue() else {
                continue;
            };
            let arn = client
                .get_queue_attributes()
                .queue_url(&urls[&dlq])
                .attribute_names(QueueAttributeName::QueueArn)
                .send()
                .await
                .map_err(|e| backend_error("GetQueueAttributes", e))?
                .attributes
                .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
                .ok_or_else(|| QueueError::Backend("dead-letter queue has no ARN".into()))?;
            let redrive = format!(
                r#"{{"deadLetterTargetArn":"{arn}","maxReceiveCount":"{}"}}"#,
                queue.max_receive_count()
            );
            let output = client
                .create_queue()
                .queue_name(format!("{prefix}{queue}"))
                .attributes(QueueAttributeName::RedrivePolicy, redrive)
                .attributes(QueueAttributeName::VisibilityTimeout, "60")
                .send()
                .await
                .map_err(|e| backend_error("CreateQueue", e))?;
            urls.insert(queue, output.queue_url.unwrap_or_default());
        }
        Ok(urls)
    }
}

#[async_trait]
impl Queue for SqsQueue {
    async fn send(
        &self,
        queue: QueueName,
        body: &str,
        delay: Duration,
    ) -> Result<String, QueueError> {
        queue::validate_send(body, delay)?;
        let output = self
            .client
            .send_message()
            .queue_url(self.url(queue)?)
            .message_body(body)
            .delay_seconds(seconds(delay))
            .send()
            .await
            .map_err(|e| backend_error("SendMessage", e))?;
        output
            .message_id
            .ok_or_else(|| QueueError::Backend("SendMessage returned no message id".into()))
    }

    async fn receive(
        &self,
        queue: QueueName,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> Result<Vec<Received>, QueueError> {
        queue::validate_receive(max)?;
        let output = self
            .client
            .receive_message()
            .queue_url(self.url(queue)?)
            .max_number_of_messages(max as i32)
            .visibility_timeout(seconds(visibility))
            .wait_time_seconds(seconds(wait).min(20))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| backend_error("ReceiveMessage", e))?;
        Ok(output
            .messages
            .unwrap_or_default()
            .into_iter()
            .map(|message| {
                let receive_count = message
                    .attributes
                    .as_ref()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(1);
                Received {
                    id: message.message_id.unwrap_or_default(),
                    body: message.body.unwrap_or_default(),
                    receipt: message.receipt_handle.unwrap_or_default(),
                    receive_count,
                }
            })
            .collect())
    }

    async fn delete(&self, queue: QueueName, receipt: &str) -> Result<(), QueueError> {
        self.client
            .delete_message()
            .queue_url(self.url(queue)?)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(|e| backend_error("DeleteMessage", e))?;
        Ok(())
    }

    async fn change_visibility(
        &self,
        queue: QueueName,
        receipt: &str,
        visibility: Duration,
    ) -> Result<(), QueueError> {
        self.client
            .change_message_visibility()
            .queue_url(self.url(queue)?)
            .receipt_handle(receipt)
            .visibility_timeout(seconds(visibility))
            .send()
            .await
            .map_err(|e| backend_error("ChangeMessageVisibility", e))?;
        Ok(())
    }
}
