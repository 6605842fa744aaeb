//! Table port on Amazon DynamoDB (aws-sdk-dynamodb, items via serde_dynamo)
