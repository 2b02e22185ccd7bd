"""What the config validation and the cost table need to know about SageMaker instance types.

Prices: SageMaker real-time inference, on-demand, us-east-1, USD per hour, as listed on
https://aws.amazon.com/sagemaker/pricing/ when recorded (2026-11). Other regions cost more or less: the cost
table in docs/operations.md says so. `local_nvme` marks instances whose storage is local NVMe: SageMaker
rejects `VolumeSizeInGB` and `KmsKeyId` for them (the NVMe volume is encrypted by the hardware).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InstanceSpec:
    gpus: int
    vcpus: int
    memory_gib: int
    gpu_memory_gib: int
    local_nvme: bool
    usd_per_hour: float


_A10G, _L4 = 24, 24

INSTANCES: dict[str, InstanceSpec] = {
    # g5: NVIDIA A10G
    "ml.g5.xlarge": InstanceSpec(1, 4, 16, _A10G, True, 1.408),
    "ml.g5.2xlarge": InstanceSpec(1, 8, 32, _A10G, True, 1.515),
    "ml.g5.4xlarge": InstanceSpec(1, 16, 64, _A10G, True, 2.03),
    "ml.g5.8xlarge": InstanceSpec(1, 32, 128, _A10G, True, 3.06),
    "ml.g5.12xlarge": InstanceSpec(4, 48, 192, 4 * _A10G, True, 7.09),
    "ml.g5.16xlarge": InstanceSpec(1, 64, 256, _A10G, True, 4.10),
    "ml.g5.24xlarge": InstanceSpec(4, 96, 384, 4 * _A10G, True, 10.18),
    "ml.g5.48xlarge": InstanceSpec(8, 192, 768, 8 * _A10G, True, 20.36),
    # g6: NVIDIA L4
    "ml.g6.xlarge": InstanceSpec(1, 4, 16, _L4, True, 1.167),
    "ml.g6.2xlarge": InstanceSpec(1, 8, 32, _L4, True, 1.361),
    "ml.g6.12xlarge": InstanceSpec(4, 48, 192, 4 * _L4, True, 6.68),
    "ml.g6.48xlarge": InstanceSpec(8, 192, 768, 8 * _L4, True, 18.70),
    # CPU, EBS-backed: for the small NLI/keyword model in cheap environments
    "ml.m5.large": InstanceSpec(0, 2, 8, 0, False, 0.115),
    "ml.m5.xlarge": InstanceSpec(0, 4, 16, 0, False, 0.23),
    "ml.m5.2xlarge": InstanceSpec(0, 8, 32, 0, False, 0.461),
    "ml.c5.xlarge": InstanceSpec(0, 4, 8, 0, False, 0.204),
    "ml.c5.2xlarge": InstanceSpec(0, 8, 16, 0, False, 0.408),
    "ml.c6i.xlarge": InstanceSpec(0, 4, 8, 0, False, 0.204),
}
