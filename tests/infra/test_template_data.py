"""The DynamoDB tables, each built from its ``chat.tables`` spec."""

from __future__ import annotations

from typing import Any

import pytest

from chat.tables import TABLES, TableSpec
from tests.infra.conftest import table_ids


@pytest.mark.parametrize("spec", TABLES, ids=lambda s: s.logical_id)
def test_table_from_spec(resources: dict[str, Any], spec: TableSpec) -> None:
    table = resources[table_ids(resources)[spec]]
    props = table["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["KeySchema"] == [
        {"AttributeName": spec.partition_key, "KeyType": "HASH"},
        {"AttributeName": spec.sort_key, "KeyType": "RANGE"},
    ]
    assert sorted(props["AttributeDefinitions"], key=lambda a: a["AttributeName"]) == sorted(
        [
            {"AttributeName": spec.partition_key, "AttributeType": "S"},
            {"AttributeName": spec.sort_key, "AttributeType": "S"},
        ],
        key=lambda a: a["AttributeName"],
    )
    assert props["TimeToLiveSpecification"] == {
        "AttributeName": spec.ttl_attribute,
        "Enabled": True,
    }
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert "TableName" not in props  # CloudFormation names it: two stacks can share an account
    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"
