//! Queue port on Amazon SQS
