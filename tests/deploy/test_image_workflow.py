"""The multi-arch image workflow (.github/workflows/image.yml): the three platforms a Pi and a
PC need, QEMU and buildx before the build, a push to ghcr.io on version tags only, and a
Dockerfile whose bases exist for each platform (no Docker daemon here: checked as text)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "image.yml"
PLATFORMS = {"linux/amd64", "linux/arm64", "linux/arm/v7"}
# Bases published for all three platforms: the official python image's Debian variants (its
# alpine ones have armv7 too, but no glibc wheels). Checked on Docker Hub's manifest lists.
MULTI_ARCH_BASE = re.compile(r"python:3\.1[1-3](\.\d+)?-(slim-)?(bookworm|bullseye|trixie)")


def workflow() -> dict[Any, Any]:
    data: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    return data


def steps() -> list[dict[str, Any]]:
    (job,) = workflow()["jobs"].values()
    found: list[dict[str, Any]] = job["steps"]
    return found


def step(action: str) -> tuple[int, dict[str, Any]]:
    (found,) = [(i, s) for i, s in enumerate(steps()) if s.get("uses", "").startswith(action)]
    return found


def test_builds_the_three_platforms_with_qemu_and_buildx() -> None:
    qemu, _ = step("docker/setup-qemu-action@")
    buildx, _ = step("docker/setup-buildx-action@")
    build, spec = step("docker/build-push-action@")
    assert qemu < buildx < build
    assert set(spec["with"]["platforms"].split(",")) == PLATFORMS
    assert spec["with"]["context"] == "."  # the Dockerfile and .dockerignore at the root


def test_pushes_to_ghcr_on_version_tags_only() -> None:
    triggers = workflow()[True]  # YAML 1.1 reads the key `on` as true
    assert triggers["push"] == {"tags": ["v*"]}
    assert "pull_request" in triggers  # built, not pushed
    _, spec = step("docker/build-push-action@")
    assert spec["with"]["push"] == "${{ github.event_name == 'push' }}"
    _, login = step("docker/login-action@")
    assert login["if"] == "github.event_name == 'push'"
    assert login["with"]["registry"] == "ghcr.io"
    assert login["with"]["password"] == "${{ secrets.GITHUB_TOKEN }}"
    assert workflow()["permissions"]["packages"] == "write"
    _, meta = step("docker/metadata-action@")
    assert meta["with"]["images"].startswith("ghcr.io/")
    assert spec["with"]["tags"] == "${{ steps.meta.outputs.tags }}"


def test_dockerfile_bases_exist_for_every_platform() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", text, re.MULTILINE))
    bases = [args.get(m.group(1) or "", m.group(0))
             for m in re.finditer(r"^FROM \$\{(\w+)\}|^FROM (?!\$)\S+", text, re.MULTILINE)]
    bases = [b.removeprefix("FROM ") for b in bases]
    assert len(bases) == 2, bases  # builder and runtime
    assert all(MULTI_ARCH_BASE.fullmatch(b) for b in bases), bases
    # Nothing tied to one architecture (a downloaded binary, a --platform pin); comments aside.
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert not re.search(r"amd64|x86_64|aarch64|armhf|--platform", code)
    # armv7 builds wheels from source: the builder stage has the compilers.
    builder = text.split(" AS builder\n")[1].split("\nFROM ")[0]
    assert "build-essential" in builder
    _, spec = step("docker/build-push-action@")
    assert "EXTRA_INDEX_URL=https://www.piwheels.org/simple" in spec["with"]["build-args"]
    assert "ARG EXTRA_INDEX_URL" in text
