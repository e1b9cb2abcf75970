//! The `ecs` backend against a local `moto_server` (PyPI `moto[server]`, installed by
//! `make deps-py`) that each test starts on a free port. moto answers ECS's control plane
//! (clusters, task definitions, services and their counts) without starting tasks, and checks
//! subnets and security groups against its EC2 model, which the tests fill through boto3.
//!
//! Credentials are fake and set in this test process only (AWS_ACCESS_KEY_ID=testing…), so the
//! backend's standard credential chain is what runs.

use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use aws_sdk_ecs::types::{Compatibility, LaunchType, LogDriver, NetworkMode, Service};
use aws_sdk_ecs::Client;
use redline_manager::scaler::ecs::{client_for, EcsConfig, EcsScaler, TaskDefinitionMode};
use redline_manager::scaler::{Scaler, ScalerError, WorkerCount, WorkerKind};
use testkit::free_port;

const REGION: &str = "us-east-1";
const SECRET_ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:redline/mnemonic";
const EXECUTION_ROLE: &str = "arn:aws:iam::123456789012:role/redline-execution";

/// Fake credentials and region for the AWS chain, set once before any test reads the
/// environment, and no profile or instance metadata to fall back on.
fn fake_aws_environment() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for (key, value) in [
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_SESSION_TOKEN", "testing"),
            ("AWS_REGION", REGION),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_CONFIG_FILE", "/nonexistent/redline-test-aws-config"),
            (
                "AWS_SHARED_CREDENTIALS_FILE",
                "/nonexistent/redline-test-aws-credentials",
            ),
        ] {
            std::env::set_var(key, value);
        }
        std::env::remove_var("AWS_PROFILE");
        std::env::remove_var("AWS_ENDPOINT_URL");
        std::env::remove_var("AWS_ENDPOINT_URL_ECS");
    });
}

/// Runs an async test body on a fresh runtime, after the fake environment is in place.
fn run<F: std::future::Future<Output = ()>>(body: F) {
    fake_aws_environment();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(body)
}

/// A `moto_server` on a free loopback port, killed on drop.
struct Moto {
    child: Child,
    endpoint: String,
}

/// The Python that has moto (the one `make deps-py` installs into).
const PYTHON: &str = "python3";

/// `moto_server`, with one fix to its answers: ECS's API gives a task's containers' `cpu` and
/// `memory` as strings, moto as numbers, which the Rust SDK refuses to read (RunTask,
/// DescribeTasks).
const MOTO_SERVER: &str = r#"
import sys
import moto.ecs.models as ecs
container_init = ecs.Container.__init__
def as_aws_answers(self, *args, **kwargs):
    container_init(self, *args, **kwargs)
    for field in ("cpu", "memory"):
        if getattr(self, field, None) is not None:
            setattr(self, field, str(getattr(self, field)))
ecs.Container.__init__ = as_aws_answers
from moto.server import main
main(sys.argv[1:])
"#;

fn check_moto_installed() {
    let found = Command::new(PYTHON)
        .args(["-c", "import moto.server, boto3"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|status| status.success())
        .unwrap_or(false);
    assert!(
        found,
        "moto[server] is not installed for {PYTHON}: run `make deps-py` \
         (pip install 'moto[server]' cfn-lint)"
    );
}

impl Moto {
    fn start() -> Moto {
        check_moto_installed();
        for _attempt in 0..5 {
            let port = free_port().expect("a free port");
            // `moto.server`'s main is `moto_server`, without depending on where pip put its
            // scripts (pyenv shims, ~/.local/bin).
            let mut child = Command::new(PYTHON)
                .args([
                    "-c",
                    MOTO_SERVER,
                    "-H",
                    "127.0.0.1",
                    "-p",
                    &port.to_string(),
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("starting moto_server");
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // lost the port to someone else: try another
                }
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Moto {
                        child,
                        endpoint: format!("http://127.0.0.1:{port}"),
                    };
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("moto_server did not start listening");
    }

    /// A VPC with one subnet and one security group in moto's EC2 model (ECS checks the
    /// network configuration of a Fargate service against it), made with boto3, which
    /// moto[server] brings.
    fn network(&self) -> (String, String) {
        let script = r#"
import sys, boto3
ec2 = boto3.client("ec2", endpoint_url=sys.argv[1], region_name=sys.argv[2])
vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.42.1.0/24")["Subnet"]["SubnetId"]
group = ec2.create_security_group(GroupName="redline-workers", Description="workers", VpcId=vpc)["GroupId"]
print(subnet, group)
"#;
        let output = Command::new(PYTHON)
            .args(["-c", script, &self.endpoint, REGION])
            .output()
            .expect("running python3 with boto3");
        assert!(
            output.status.success(),
            "creating the VPC in moto failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        let mut ids = stdout.split_whitespace().map(str::to_string);
        (ids.next().unwrap(), ids.next().unwrap())
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn register_config(moto: &Moto, cluster: &str, subnet: &str, group: &str) -> EcsConfig {
    EcsConfig {
        cluster: Some(cluster.to_string()),
        endpoint: Some(moto.endpoint.clone()),
        image_prefix: Some("123456789012.dkr.ecr.us-east-1.amazonaws.com/redline/".into()),
        image_tag: "v1".into(),
        cpu: 512,
        memory: 1024,
        subnets: vec![subnet.to_string()],
        security_groups: vec![group.to_string()],
        execution_role_arn: Some(EXECUTION_ROLE.into()),
        secrets: vec![format!("MNEMONIC={SECRET_ARN}")],
        log_group: Some("/redline/workers".into()),
        env: vec!["RUST_LOG=info".into()],
        ..EcsConfig::default()
    }
}

/// A moto server with a VPC and the ECS cluster `cluster` in it, the register-mode config for
/// them and a client. The server stops when the returned [`Moto`] is dropped.
async fn start_cluster(cluster: &str) -> (Moto, EcsConfig, Client) {
    let moto = Moto::start();
    let (subnet, group) = moto.network();
    let config = register_config(&moto, cluster, &subnet, &group);
    let client = create_cluster(&config).await;
    (moto, config, client)
}

/// Connects with `config`, which must fail as a config error on `field`.
async fn connect_error(config: EcsConfig, field: &str) -> ScalerError {
    let error = EcsScaler::connect(config, Vec::new()).await.unwrap_err();
    assert!(
        matches!(error, ScalerError::Config { field: f, .. } if f == field),
        "expected {field}: {error}"
    );
    error
}

async fn create_cluster(config: &EcsConfig) -> Client {
    let (client, region) = client_for(config).await.expect("an ECS client");
    assert_eq!(region, REGION);
    client
        .create_cluster()
        .cluster_name(config.cluster.as_deref().unwrap())
        .send()
        .await
        .expect("creating the cluster in moto");
    client
}

fn worker_env() -> Vec<(String, String)> {
    vec![
        (
            "REDIS_URL".into(),
            "rediss://redline.cache.amazonaws.com:6379".into(),
        ),
        ("QUEUE_PREFIX".into(), "redline".into()),
    ]
}

fn assert_count(count: WorkerCount, desired: u32) {
    assert_eq!(count.desired, desired, "{count:?}");
    // moto reports a new service's tasks as pending, then running after an update; no task
    // really starts, so only the sum is the backend's to check.
    assert_eq!(count.running + count.pending, desired, "{count:?}");
}

async fn describe_service(client: &Client, cluster: &str, name: &str) -> Service {
    client
        .describe_services()
        .cluster(cluster)
        .services(name)
        .send()
        .await
        .unwrap()
        .services()[0]
        .clone()
}

async fn revisions(client: &Client, family: &str) -> Vec<String> {
    client
        .list_task_definitions()
        .family_prefix(family)
        .send()
        .await
        .unwrap()
        .task_definition_arns()
        .to_vec()
}

#[test]
fn registers_creates_and_scales_a_fargate_service() {
    run(async {
        let (_moto, config, client) = start_cluster("redline-test").await;
        let kind = WorkerKind::HealthChecker;

        let scaler = EcsScaler::connect(config.clone(), worker_env())
            .await
            .expect("connecting to moto");
        assert_eq!(scaler.backend(), "ecs");
        // No service yet: nothing runs.
        assert_eq!(scaler.observe(kind).await.unwrap(), WorkerCount::default());

        // 0 → 3 registers the task definition and creates the service.
        scaler.scale_to(kind, 3).await.unwrap();
        assert_count(scaler.observe(kind).await.unwrap(), 3);

        let service = describe_service(&client, "redline-test", "redline-health-checker").await;
        assert_eq!(service.launch_type(), Some(&LaunchType::Fargate));
        let vpc = service
            .network_configuration()
            .and_then(|n| n.awsvpc_configuration())
            .expect("an awsvpc network configuration");
        assert_eq!(vpc.subnets(), config.subnets);
        assert_eq!(vpc.security_groups(), config.security_groups);

        let definition = client
            .describe_task_definition()
            .task_definition(service.task_definition().unwrap())
            .send()
            .await
            .unwrap()
            .task_definition()
            .cloned()
            .unwrap();
        assert_eq!(definition.family(), Some("redline-health-checker"));
        assert_eq!(
            definition.requires_compatibilities(),
            [Compatibility::Fargate]
        );
        assert_eq!(definition.network_mode(), Some(&NetworkMode::Awsvpc));
        assert_eq!(
            (definition.cpu(), definition.memory()),
            (Some("512"), Some("1024"))
        );
        assert_eq!(definition.execution_role_arn(), Some(EXECUTION_ROLE));
        let container = &definition.container_definitions()[0];
        assert_eq!(
            container.image(),
            Some("123456789012.dkr.ecr.us-east-1.amazonaws.com/redline/health-checker:v1")
        );
        let env: Vec<(&str, &str)> = container
            .environment()
            .iter()
            .map(|pair| (pair.name().unwrap(), pair.value().unwrap()))
            .collect();
        assert!(env.contains(&("REDIS_URL", "rediss://redline.cache.amazonaws.com:6379")));
        assert!(
            env.contains(&("RUST_LOG", "info")),
            "--ecs-env is added: {env:?}"
        );
        let secret = &container.secrets()[0];
        assert_eq!(
            (secret.name(), secret.value_from()),
            ("MNEMONIC", SECRET_ARN)
        );
        let log = container.log_configuration().unwrap();
        assert_eq!(log.log_driver(), &LogDriver::Awslogs);
        let options = log.options().unwrap();
        assert_eq!(options["awslogs-group"], "/redline/workers");
        assert_eq!(options["awslogs-region"], REGION);

        // 3 → 1 → 0 sets desiredCount; the other kind is untouched.
        scaler.scale_to(kind, 1).await.unwrap();
        assert_count(scaler.observe(kind).await.unwrap(), 1);
        scaler.scale_to(kind, 0).await.unwrap();
        assert_count(scaler.observe(kind).await.unwrap(), 0);
        assert_eq!(
            scaler.observe(WorkerKind::Liquidator).await.unwrap(),
            WorkerCount::default()
        );
        scaler.scale_to(kind, 2).await.unwrap();

        // A restarted manager with the same flags adopts the service and reuses the
        // registered revision instead of registering a new one.
        drop(scaler);
        let scaler = EcsScaler::connect(config.clone(), worker_env())
            .await
            .unwrap();
        assert_count(scaler.observe(kind).await.unwrap(), 2);
        scaler.scale_to(kind, 1).await.unwrap();
        assert_count(scaler.observe(kind).await.unwrap(), 1);
        assert_eq!(revisions(&client, "redline-health-checker").await.len(), 1);

        // New flags (a new image tag) register revision 2 and roll the service onto it.
        let retagged = EcsConfig {
            image_tag: "v2".into(),
            ..config.clone()
        };
        let scaler = EcsScaler::connect(retagged, worker_env()).await.unwrap();
        scaler.scale_to(kind, 1).await.unwrap();
        assert_eq!(revisions(&client, "redline-health-checker").await.len(), 2);
        let service = describe_service(&client, "redline-test", "redline-health-checker").await;
        assert!(
            service
                .task_definition()
                .unwrap()
                .ends_with("redline-health-checker:2"),
            "{:?}",
            service.task_definition()
        );

        // Shutdown leaves the services running unless asked.
        scaler.shutdown().await.unwrap();
        assert_count(scaler.observe(kind).await.unwrap(), 1);
        let stopping = EcsScaler::connect(
            EcsConfig {
                image_tag: "v2".into(),
                scale_down_on_shutdown: true,
                ..config
            },
            worker_env(),
        )
        .await
        .unwrap();
        stopping.shutdown().await.unwrap();
        assert_count(stopping.observe(kind).await.unwrap(), 0);
    });
}

#[test]
fn existing_mode_only_sets_counts_of_deployed_services() {
    run(async {
        let (_moto, register, client) = start_cluster("redline-deployed").await;
        // The infrastructure code's part: a task definition and a service for the
        // health-checker only.
        let deployed = EcsScaler::connect(register.clone(), worker_env())
            .await
            .unwrap();
        deployed
            .scale_to(WorkerKind::HealthChecker, 1)
            .await
            .unwrap();
        let revisions_before = revisions(&client, "redline-health-checker").await;

        let existing = EcsConfig {
            cluster: register.cluster.clone(),
            endpoint: register.endpoint.clone(),
            task_definitions: TaskDefinitionMode::Existing,
            ..EcsConfig::default()
        };
        let scaler = EcsScaler::connect(existing, Vec::new()).await.unwrap();
        assert_count(scaler.observe(WorkerKind::HealthChecker).await.unwrap(), 1);
        scaler.scale_to(WorkerKind::HealthChecker, 3).await.unwrap();
        assert_count(scaler.observe(WorkerKind::HealthChecker).await.unwrap(), 3);
        assert_eq!(
            revisions(&client, "redline-health-checker").await,
            revisions_before,
            "existing mode registers nothing"
        );

        // The liquidator service was never deployed: both calls say which service is missing.
        for error in [
            scaler.observe(WorkerKind::Liquidator).await.unwrap_err(),
            scaler
                .scale_to(WorkerKind::Liquidator, 1)
                .await
                .unwrap_err(),
        ] {
            let message = error.to_string();
            assert!(matches!(error, ScalerError::Backend { .. }), "{message}");
            assert!(
                message.contains("redline-liquidator") && message.contains("redline-deployed"),
                "{message}"
            );
        }
    });
}

#[test]
fn errors_name_the_field_or_resource() {
    run(async {
        let (_moto, config, _client) = start_cluster("redline-errors").await;

        // A cluster that does not exist fails at start, naming the flag and the cluster.
        let no_cluster = EcsConfig {
            cluster: Some("no-such-cluster".into()),
            ..config.clone()
        };
        let error = connect_error(no_cluster, "--ecs-cluster").await;
        assert!(error.to_string().contains("no-such-cluster"), "{error}");

        // Bad flags fail before any call, naming the flag.
        for (config, field) in [
            (
                EcsConfig {
                    memory: 300,
                    ..config.clone()
                },
                "--ecs-memory",
            ),
            (
                EcsConfig {
                    subnets: Vec::new(),
                    ..config.clone()
                },
                "--ecs-subnets",
            ),
            (
                EcsConfig {
                    secrets: vec!["MNEMONIC=plain-text".into()],
                    ..config.clone()
                },
                "--ecs-secret",
            ),
            (
                EcsConfig {
                    image_prefix: None,
                    ..config.clone()
                },
                "--ecs-image-prefix",
            ),
        ] {
            connect_error(config, field).await;
        }

        // An error from ECS itself names the call, the service and ECS's own reason.
        let unknown_subnet = EcsConfig {
            subnets: vec!["subnet-00000000000000000".into()],
            ..config
        };
        let scaler = EcsScaler::connect(unknown_subnet, Vec::new())
            .await
            .unwrap();
        let message = scaler
            .scale_to(WorkerKind::Liquidator, 1)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("CreateService redline-liquidator")
                && message.contains("subnet-00000000000000000"),
            "{message}"
        );
    });
}

/// A liquidator task that ECS reports stopped gives its wallet slots back at the manager's next
/// scaling tick, for its replacement to lease the same wallets at once instead of after the
/// leases' ttl; a running task keeps its slots, and so does a task of another group (not this
/// service's worker) even once stopped. moto starts no tasks for services, so the test starts
/// them as ECS's service scheduler would (RunTask in the group `service:<name>`) and stops one.
#[test]
fn a_stopped_liquidator_tasks_wallet_slots_are_freed_at_once() {
    use redline_manager::handoff::WalletHandoff;
    use redline_pipeline::redis_conn::{self, ConnectOptions};
    use redline_pipeline::{ecs_task, wallet_slots};

    run(async {
        let cluster = "redline-handoff";
        let (_moto, config, client) = start_cluster(cluster).await;
        let redis_server = testkit::RedisServer::start().expect("starting redis-server");
        let redis = redis_conn::connect(&redis_server.queue_config(), ConnectOptions::default())
            .await
            .unwrap();
        let scaler = EcsScaler::connect(config.clone(), worker_env())
            .await
            .expect("connecting to moto")
            .with_wallet_handoff(WalletHandoff::new(redis.clone(), "handoff", "devnet-1"));
        scaler.scale_to(WorkerKind::Liquidator, 2).await.unwrap();
        // moto's RunTask fails on an awsvpc definition (its ENI model lacks a DNS name) and on
        // one without container memory, so the tasks run a bridge-mode stand-in definition; the
        // handoff reads only their group, status and ARN.
        let definition = client
            .register_task_definition()
            .family("redline-liquidator-tasks")
            .network_mode(NetworkMode::Bridge)
            .container_definitions(
                aws_sdk_ecs::types::ContainerDefinition::builder()
                    .name("worker")
                    .image("redline/liquidator:v1")
                    .memory(512)
                    .build(),
            )
            .send()
            .await
            .expect("RegisterTaskDefinition in moto")
            .task_definition()
            .and_then(|d| d.task_definition_arn())
            .unwrap()
            .to_owned();
        let start_task = |group: &'static str| {
            let (client, definition) = (client.clone(), definition.clone());
            async move {
                let started = client
                    .run_task()
                    .cluster(cluster)
                    .task_definition(definition)
                    .launch_type(LaunchType::Fargate)
                    .group(group)
                    .send()
                    .await
                    .expect("RunTask in moto");
                started.tasks()[0].task_arn().unwrap().to_owned()
            }
        };
        let dead = start_task("service:redline-liquidator").await;
        let alive = start_task("service:redline-liquidator").await;
        let other = start_task("family:redline-liquidator").await;

        // Each task's worker leased one slot, as a liquidator does.
        let base = wallet_slots::liquidator_base("handoff", "devnet-1");
        for (slot, arn) in [(0, &dead), (1, &alive), (2, &other)] {
            let owner = ecs_task::consumer_name(arn);
            let _: () = redis::cmd("SET")
                .arg(wallet_slots::slot_key(&base, slot))
                .arg(format!("{owner}:lease-{slot}"))
                .query_async(&mut redis.clone())
                .await
                .unwrap();
            wallet_slots::record_holder(&redis, &base, slot, &owner)
                .await
                .unwrap();
        }
        let leased = || {
            let (redis, base) = (redis.clone(), base.clone());
            async move {
                let mut leased = Vec::new();
                for slot in 0..3 {
                    let token: Option<String> = redis::cmd("GET")
                        .arg(wallet_slots::slot_key(&base, slot))
                        .query_async(&mut redis.clone())
                        .await
                        .unwrap();
                    if token.is_some() {
                        leased.push(slot);
                    }
                }
                leased
            }
        };

        scaler.scale_to(WorkerKind::Liquidator, 2).await.unwrap();
        assert_eq!(leased().await, [0, 1, 2], "running tasks keep their slots");

        for arn in [&dead, &other] {
            client
                .stop_task()
                .cluster(cluster)
                .task(arn)
                .reason("test: the worker died")
                .send()
                .await
                .expect("StopTask in moto");
        }
        // The stopped tasks are read at most every two seconds: tick until they have been.
        let deadline = Instant::now() + Duration::from_secs(10);
        while leased().await != [1, 2] && Instant::now() < deadline {
            scaler.scale_to(WorkerKind::Liquidator, 2).await.unwrap();
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        assert_eq!(
            leased().await,
            [1, 2],
            "the stopped liquidator's slot is free; the running one's and the other group's stay"
        );
        // Each stopped task is handed off once: later ticks leave Redis alone (this token, in
        // the dead task's name, would otherwise be deleted again).
        let _: () = redis::cmd("SET")
            .arg(wallet_slots::slot_key(&base, 0))
            .arg(format!("{}:lease-again", ecs_task::consumer_name(&dead)))
            .query_async(&mut redis.clone())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        scaler.scale_to(WorkerKind::Liquidator, 2).await.unwrap();
        assert_eq!(leased().await, [0, 1, 2]);
    });
}
