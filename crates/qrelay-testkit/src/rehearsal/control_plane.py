"""The deploy rehearsal's hands on the AWS control plane, in Python because the SAM transform only exists there.

Run by the rehearsal (crates/qrelay-testkit/src/rehearsal/control_plane.rs) with the project's .venv Python, which
has the SAM CLI and so samtranslator and boto3; every AWS call goes to moto (AWS_ENDPOINT_URL). It decides nothing
and checks nothing: it transforms, creates the SAM CLI's bucket stack, and reads a created stack into plain JSON
for the Rust side to check. boto3 reads CloudFormation, Lambda, IAM and CloudWatch Logs here so that the workspace
needs no Rust SDK crates for them.

Commands (each prints one JSON document):
  transform SOURCE TRANSFORMED
  bootstrap-bucket
  snapshot STACK
  disable-mapping UUID
"""

import ast
import json
import sys

import boto3

# The transform wants each function's code in S3; the rehearsal points `Code` at the real package afterwards, and
# `sam deploy` uploads it.
PLACEHOLDER_CODE = "s3://rehearsal-placeholder/code.zip"


class NoManagedPolicies:
    """qrelay's functions list no `Policies`, so the transform never needs AWS's managed policy ARNs."""

    def load(self):
        return {}


def transform(source, transformed_path):
    from samtranslator.translator.transform import transform as sam_transform
    from samtranslator.yaml_helper import yaml_parse

    with open(source, encoding="utf-8") as f:
        template = yaml_parse(f.read())
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource.setdefault("Properties", {})["CodeUri"] = PLACEHOLDER_CODE
    transformed = sam_transform(template, {}, NoManagedPolicies())
    with open(transformed_path, "w", encoding="utf-8") as f:
        json.dump(transformed, f, indent=1)
    return {"resources": len(transformed.get("Resources", {}))}


def bootstrap_bucket():
    """Creates the SAM CLI's managed bucket stack with CreateStack, from the SAM CLI's own template.

    `sam deploy --resolve-s3` creates it through a change set, and moto returns no Outputs for a stack created by
    a change set, so the SAM CLI would refuse the stack it just made ("missing Tags and/or Outputs")."""
    from samcli.lib.bootstrap.bootstrap import SAM_CLI_STACK_NAME, _get_stack_template

    cloudformation = boto3.client("cloudformation")
    cloudformation.create_stack(
        StackName=SAM_CLI_STACK_NAME,
        TemplateBody=_get_stack_template(),
        Tags=[{"Key": "ManagedStackSource", "Value": "AwsSamCli"}],
    )
    stack = cloudformation.describe_stacks(StackName=SAM_CLI_STACK_NAME)["Stacks"][0]
    return {"stack": SAM_CLI_STACK_NAME, "outputs": stack.get("Outputs")}


def policy_document(document):
    """A policy as a JSON object, and how moto stored it: boto3 decodes JSON itself; moto keeps inline role
    policies created by CloudFormation as Python's repr of a dict, which only `ast.literal_eval` reads."""
    if isinstance(document, dict):
        return {"document": document, "stored_as": "json"}
    try:
        return {"document": json.loads(document), "stored_as": "json"}
    except ValueError:
        return {"document": ast.literal_eval(document), "stored_as": "python-repr"}


def snapshot(stack_name):
    cloudformation = boto3.client("cloudformation")
    lambda_ = boto3.client("lambda")
    iam = boto3.client("iam")
    logs = boto3.client("logs")

    stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    resources, nameless = [], 0
    for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack_name):
        for r in page["StackResourceSummaries"]:
            if not r.get("LogicalResourceId"):
                # moto lists a resource type it does not implement as an entry without id, type or physical id.
                nameless += 1
                continue
            resources.append(
                {
                    "logical_id": r["LogicalResourceId"],
                    "type": r["ResourceType"],
                    "physical_id": r.get("PhysicalResourceId") or "",
                    "status": r.get("ResourceStatus", ""),
                }
            )

    functions, mappings, roles, log_groups = {}, [], {}, {}
    for r in resources:
        if r["type"] == "AWS::Lambda::Function":
            c = lambda_.get_function_configuration(FunctionName=r["physical_id"])
            try:
                permissions = json.loads(lambda_.get_policy(FunctionName=r["physical_id"])["Policy"])["Statement"]
            except lambda_.exceptions.ResourceNotFoundException:
                permissions = []
            functions[r["logical_id"]] = {
                "name": c["FunctionName"],
                "arn": c["FunctionArn"],
                "role": c["Role"],
                "timeout": c.get("Timeout"),
                "memory": c.get("MemorySize"),
                "runtime": c.get("Runtime"),
                "handler": c.get("Handler"),
                "architectures": c.get("Architectures", []),
                "logging": c.get("LoggingConfig"),
                "environment": c.get("Environment", {}).get("Variables", {}),
                "permissions": permissions,
            }
            for m in lambda_.list_event_source_mappings(FunctionName=r["physical_id"])["EventSourceMappings"]:
                mappings.append(
                    {
                        "uuid": m["UUID"],
                        "function_arn": m.get("FunctionArn"),
                        "source_arn": m.get("EventSourceArn"),
                        "batch_size": m.get("BatchSize"),
                        "batching_window_seconds": m.get("MaximumBatchingWindowInSeconds"),
                        "response_types": m.get("FunctionResponseTypes", []),
                        "maximum_concurrency": m.get("ScalingConfig", {}).get("MaximumConcurrency"),
                        "state": m.get("State"),
                    }
                )
        elif r["type"] == "AWS::IAM::Role":
            role = iam.get_role(RoleName=r["physical_id"])["Role"]
            inline = {
                name: policy_document(
                    iam.get_role_policy(RoleName=r["physical_id"], PolicyName=name)["PolicyDocument"]
                )
                for name in iam.list_role_policies(RoleName=r["physical_id"])["PolicyNames"]
            }
            attached = [
                p["PolicyArn"]
                for p in iam.list_attached_role_policies(RoleName=r["physical_id"])["AttachedPolicies"]
            ]
            roles[r["logical_id"]] = {"name": role["RoleName"], "arn": role["Arn"], "inline": inline, "attached": attached}
        elif r["type"] == "AWS::Logs::LogGroup":
            groups = logs.describe_log_groups(logGroupNamePrefix=r["physical_id"])["logGroups"]
            group = next((g for g in groups if g["logGroupName"] == r["physical_id"]), None)
            if group:
                log_groups[r["logical_id"]] = {
                    "name": group["logGroupName"],
                    "arn": group.get("arn"),
                    "retention_days": group.get("retentionInDays"),
                }

    return {
        "stack": {"id": stack["StackId"], "status": stack["StackStatus"], "outputs": stack.get("Outputs")},
        "resources": resources,
        "nameless_resources": nameless,
        "functions": functions,
        "mappings": mappings,
        "roles": roles,
        "log_groups": log_groups,
    }


def disable_mapping(uuid):
    """Disables an SQS event source mapping: moto would otherwise try to run the function in Docker on every
    SendMessage to its queue, and the rehearsal plays the mapping itself."""
    state = boto3.client("lambda").update_event_source_mapping(UUID=uuid, Enabled=False).get("State")
    return {"uuid": uuid, "state": state}


COMMANDS = {
    "transform": transform,
    "bootstrap-bucket": bootstrap_bucket,
    "snapshot": snapshot,
    "disable-mapping": disable_mapping,
}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(f"usage: control_plane.py {{{','.join(COMMANDS)}}} ARGS...")
    json.dump(COMMANDS[sys.argv[1]](*sys.argv[2:]), sys.stdout, default=str)
