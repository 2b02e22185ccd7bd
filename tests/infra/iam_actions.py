"""IAM actions the infra tests name in more than one place (a unique module name: test folders share sys.path)."""

from __future__ import annotations

# The CloudWatch Logs log-delivery API that Step Functions logging uses: no resource-level permission exists.
LOG_DELIVERY = frozenset(
    {
        "logs:CreateLogDelivery",
        "logs:GetLogDelivery",
        "logs:UpdateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutResourcePolicy",
        "logs:DescribeResourcePolicies",
        "logs:DescribeLogGroups",
    }
)
