"""Local AWS for docker-compose.aws.yaml: moto's server plus Polybot's resources.

Starts moto (S3, SQS, DynamoDB, Secrets Manager, Auto Scaling, CloudWatch on
one port), creates what Terraform would create in a real account (bucket,
jobs queue with a dead-letter queue, predictions table, Telegram secret, a
detector Auto Scaling Group for the reporter to count), writes a marker file
for the compose health check, then serves until stopped.

Settings (environment): MOTO_PORT (5000), AWS_REGION (eu-west-1),
POLYBOT_NAME (polybot), POLYBOT_MAX_RECEIVE_COUNT (3), TELEGRAM_TOKEN and
TELEGRAM_WEBHOOK_SECRET (stored in the secret when set), READY_FILE.
"""

import json
import os
import signal
import threading

import boto3
from moto.server import ThreadedMotoServer

PORT = int(os.environ.get("MOTO_PORT", "5000"))
REGION = os.environ.get("AWS_REGION", "eu-west-1")
NAME = os.environ.get("POLYBOT_NAME", "polybot")
MAX_RECEIVE_COUNT = os.environ.get("POLYBOT_MAX_RECEIVE_COUNT", "3")
READY_FILE = os.environ.get("READY_FILE", "/tmp/polybot-aws-ready")


def client(service):
    return boto3.client(
        service,
        region_name=REGION,
        endpoint_url=f"http://127.0.0.1:{PORT}",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def create_resources():
    client("s3").create_bucket(
        Bucket=f"{NAME}-local",
        CreateBucketConfiguration={"LocationConstraint": REGION},
    )

    sqs = client("sqs")
    dlq_url = sqs.create_queue(
        QueueName=f"{NAME}-jobs-dlq",
        Attributes={"MessageRetentionPeriod": "1209600"},
    )["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    sqs.create_queue(
        QueueName=f"{NAME}-jobs",
        Attributes={
            "VisibilityTimeout": "60",
            "ReceiveMessageWaitTimeSeconds": "20",
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}
            ),
        },
    )

    ddb = client("dynamodb")
    table = f"{NAME}-predictions"
    ddb.create_table(
        TableName=table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "chat_id", "AttributeType": "N"},
            {"AttributeName": "time", "AttributeType": "N"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "chat_id-time-index",
                "KeySchema": [
                    {"AttributeName": "chat_id", "KeyType": "HASH"},
                    {"AttributeName": "time", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    ddb.update_time_to_live(
        TableName=table,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
    )

    token = os.environ.get("TELEGRAM_TOKEN", "")
    if token:
        client("secretsmanager").create_secret(
            Name=f"{NAME}/telegram",
            SecretString=json.dumps(
                {
                    "telegram_token": token,
                    "webhook_secret": os.environ.get("TELEGRAM_WEBHOOK_SECRET", ""),
                }
            ),
        )

    # The reporter divides the backlog by the detector group's in-service
    # instances; moto simulates one.
    ec2 = client("ec2")
    image_id = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    ec2.create_launch_template(
        LaunchTemplateName=f"{NAME}-detector",
        LaunchTemplateData={"ImageId": image_id, "InstanceType": "c6i.large"},
    )
    zone = ec2.describe_availability_zones()["AvailabilityZones"][0]["ZoneName"]
    client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName=f"{NAME}-detector",
        LaunchTemplate={"LaunchTemplateName": f"{NAME}-detector"},
        MinSize=0,
        MaxSize=4,
        DesiredCapacity=1,
        AvailabilityZones=[zone],
    )


def main():
    server = ThreadedMotoServer(ip_address="0.0.0.0", port=PORT)
    server.start()
    create_resources()
    with open(READY_FILE, "w", encoding="utf-8") as ready:
        ready.write("ready\n")
    print(f"local AWS ready on port {PORT} (region {REGION})", flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.stop()


if __name__ == "__main__":
    main()
