//! redline's Redis pipeline: the connection (standalone or cluster, plain or TLS), the job
//! queues (streams with a dead-letter stream, the priority queue with parking), the index of
//! accounts with debt, the jobs the services hand each other, and the wallets' capital reports.

pub mod capital;
pub mod deployment;
pub mod ecs_task;
pub mod index;
pub mod jobs;
pub mod near;
pub mod queue;
pub mod redis_conn;
pub mod wallet_slots;
