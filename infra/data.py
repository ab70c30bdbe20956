"""The DynamoDB tables, built from ``chat.tables.TABLES`` (the local gateway's source too)."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from chat.tables import TABLES, TableSpec


class ChatTables(Construct):
    """One on-demand table per spec, with TTL and point-in-time recovery.

    On-demand because chat traffic is bursty and mostly idle: no capacity to size, no
    bill when nobody talks. Physical names are left to CloudFormation so two stacks (or
    two stages) can live in one account; the functions learn them from env vars.
    """

    def __init__(self, scope: Construct, construct_id: str, *, destroy: bool) -> None:
        super().__init__(scope, construct_id)
        self.tables: dict[TableSpec, dynamodb.Table] = {}
        for spec in TABLES:
            table = dynamodb.Table(
                self,
                spec.logical_id,
                partition_key=dynamodb.Attribute(
                    name=spec.partition_key, type=dynamodb.AttributeType.STRING
                ),
                sort_key=dynamodb.Attribute(name=spec.sort_key, type=dynamodb.AttributeType.STRING)
                if spec.sort_key
                else None,
                billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
                # KMS, AWS's key for DynamoDB (aws/dynamodb: no key to pay for or grant),
                # not the default AWS-owned key: Guard's CT.DYNAMODB.PR.2.
                encryption=dynamodb.TableEncryption.AWS_MANAGED,
                # DynamoDB deletes expired items within a few days, not at once: the code
                # must still ignore rows whose expires_at has passed.
                time_to_live_attribute=spec.ttl_attribute,
                point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                    point_in_time_recovery_enabled=True
                ),
                # Chat history is user data: keep it unless the stack is declared throwaway.
                removal_policy=RemovalPolicy.DESTROY if destroy else RemovalPolicy.RETAIN,
            )
            self.tables[spec] = table

    def names(self) -> dict[TableSpec, str]:
        """Physical table names (deploy-time tokens), keyed like ``function_environment`` wants."""
        return {spec: table.table_name for spec, table in self.tables.items()}
