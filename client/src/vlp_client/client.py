"""VlpClient: the HTTP API (docs/api.md) from Python.

Auth: `iam` signs every call with AWS Signature Version 4 (service `execute-api`) using botocore's signer and
credential chain (environment, `profile`, SSO, instance roles...); the region comes from the URL
(`<id>.execute-api.<region>.amazonaws.com`), else `region`, else the profile's. `cognito` sends a user pool token
in `Authorization`; `api_key` sends `x-api-key`; `none` sends nothing (local mode's default).
"""

from __future__ import annotations

import base64
import json
import os
import random
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, TypedDict, Unpack
from urllib.parse import quote, urlsplit
from xml.etree import ElementTree

import requests
from urllib3 import encode_multipart_formdata

from vlp_client import restyle as restyle_fields
from vlp_client.errors import VlpError
from vlp_client.local import LOCAL_REGION, LocalMode, find_local_mode
from vlp_client.media import AUDIO_TYPES, IMAGE_TYPES, MAX_INLINE_IMAGE_BYTES, is_key, sniff
from vlp_client.results import AnalyzeResult, Job, RestyleResult

AUTH_MODES = ("iam", "cognito", "api_key", "none")
SERVICE = "execute-api"
# the Api stack of environment <env> (stacks/constants.py API_STACK_ID; CDK names a stage's stacks <stage>-<id>)
API_STACK_NAME = "{env}-Api"
OUTPUT_API_URL = "ApiUrl"
OUTPUT_API_KEY_ID = "ApiKeyId"
OUTPUT_USER_POOL_ID = "UserPoolId"
_EXECUTE_API_HOST = re.compile(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$")
_LOOPBACK = ("127.0.0.1", "localhost", "::1")

ImageInput = str | Path | bytes
UploadProgress = Callable[[int, int], None]  # (bytes sent, total bytes)
JobProgress = Callable[[Job], None]


class RestyleFields(TypedDict, total=False):
    """Task restyle's fields (vlp_client.restyle), which analyze_body, submit_job and restyle take by name."""

    # a preset or a style of one's own, and the description (skips interrogation): top-level fields of the body
    style: str | None
    style_prompt: str | None
    prompt: str | None
    # options by name (merged into `options`): restyle's, and `seed`
    strength: float | None
    steps: int | None
    guidance_scale: float | None
    negative_prompt: str | None
    seed: int | None


class RequestFields(RestyleFields, total=False):
    """The request fields besides the image that analyze and submit_job pass on to analyze_body (its defaults)."""

    text: str | None
    audio: str | Path | bytes | None
    task: str
    labels: list[str] | None
    options: dict[str, Any] | None
    history: list[dict[str, Any]] | None
    progress: UploadProgress | None


class _ProgressBody:
    """A request body that reports how much of it was read (sent); requests streams it by `read`."""

    def __init__(self, data: bytes, progress: UploadProgress | None) -> None:
        self._data = data
        self._position = 0
        self._progress = progress

    def __len__(self) -> int:
        return len(self._data)

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            size = len(self._data) - self._position
        piece = self._data[self._position : self._position + size]
        self._position += len(piece)
        if self._progress is not None and piece:
            self._progress(self._position, len(self._data))
        return piece


def _retry_after(response: requests.Response, body: dict[str, Any] | None = None) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None and body:
        value = (body.get("error") or {}).get("retry_after") if isinstance(body.get("error"), dict) else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None


def error_from_response(response: requests.Response) -> VlpError:
    """The API's error body ({"error": {code, message, request_id, ...}}) as a VlpError; API Gateway's own
    {"message": ...} and other bodies get a code from x-amzn-ErrorType or the status."""
    request_id = response.headers.get("X-Request-Id") or response.headers.get("x-amzn-RequestId")
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        return VlpError(
            str(error.get("code") or f"HTTP_{response.status_code}"),
            str(error.get("message") or response.reason or ""),
            status=response.status_code,
            request_id=error.get("request_id") or request_id,
            retry_after=_retry_after(response, body),
            details=error.get("details"),
            step=error.get("step"),
        )
    error_type = (response.headers.get("x-amzn-ErrorType") or "").split(":")[0]
    message = body.get("message") if isinstance(body, dict) else None
    return VlpError(
        re.sub(r"(?<!^)(?=[A-Z])", "_", error_type.removesuffix("Exception")).upper()
        if error_type
        else f"HTTP_{response.status_code}",
        str(message or response.text[:300] or response.reason or "no message"),
        status=response.status_code,
        request_id=request_id,
        retry_after=_retry_after(response),
    )


def _s3_error(response: requests.Response) -> VlpError:
    code, message = f"UPLOAD_FAILED_{response.status_code}", response.text[:300]
    try:
        root = ElementTree.fromstring(response.content)  # noqa: S314 (S3's own error document)
        code = root.findtext("Code") or code
        message = root.findtext("Message") or message
    except ElementTree.ParseError:
        pass
    return VlpError(
        code,
        f"upload refused by S3: {message}",
        status=response.status_code,
        request_id=response.headers.get("x-amz-request-id"),
    )


class VlpClient:
    """A client of one deployment of the API (or of local mode).

    `api_url`: the Api stack's ApiUrl (e.g. https://abc.execute-api.us-east-1.amazonaws.com/live), or local mode's
    URL; None: local mode's (.local/run/state.json above the working directory, else http://127.0.0.1:8080).
    """

    def __init__(
        self,
        api_url: str | None = None,
        *,
        auth: str = "none",
        api_key: str | None = None,
        token: str | None = None,
        profile: str | None = None,
        region: str | None = None,
        timeout: float = 130.0,
        credentials: tuple[str, str] | tuple[str, str, str | None] | None = None,
        retries: int = 2,
        max_retry_wait: float = 20.0,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if auth not in AUTH_MODES:
            raise VlpError("INVALID_ARGUMENT", f"auth {auth!r}: one of {', '.join(AUTH_MODES)}")
        self.api_url = (api_url or find_local_mode().api_url).rstrip("/")
        if not urlsplit(self.api_url).scheme.startswith("http") or not urlsplit(self.api_url).hostname:
            raise VlpError("INVALID_ARGUMENT", f"api url {self.api_url!r}: expected http(s)://host[/stage]")
        self.auth = auth
        self.api_key = api_key or (os.environ.get("VLP_API_KEY") if auth == "api_key" else None)
        self.token = token or (os.environ.get("VLP_TOKEN") if auth == "cognito" else None)
        if auth == "api_key" and not self.api_key:
            raise VlpError("INVALID_ARGUMENT", "auth api_key needs an API key (--api-key or VLP_API_KEY)")
        if auth == "cognito" and not self.token:
            raise VlpError("INVALID_ARGUMENT", "auth cognito needs a token (--token or VLP_TOKEN)")
        self.profile = profile
        self.region = region
        self.timeout = timeout
        self.retries = retries
        self.max_retry_wait = max_retry_wait
        self.session = session or requests.Session()
        self._explicit_credentials = credentials
        self._credentials: Any = None
        self._botocore: Any = None
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"VlpClient({self.api_url!r}, auth={self.auth!r})"

    # ---- construction from a deployment or local mode ----
    @classmethod
    def from_env(
        cls,
        env: str,
        profile: str | None = None,
        region: str | None = None,
        *,
        cloudformation: Any = None,
        **kwargs: Any,
    ) -> VlpClient:
        """The API of environment `env`: the ApiUrl output of its `<env>/Api` stack (CloudFormation stack
        `<env>-Api`). The auth defaults to the stack's: api_key when it has an ApiKeyId output, cognito with a
        UserPoolId, else iam."""
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

        stack_name = API_STACK_NAME.format(env=env)
        try:
            if cloudformation is None:
                session = cls._botocore_session(profile)
                cloudformation = session.create_client("cloudformation", region_name=region)
            stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
        except NoCredentialsError as error:
            raise VlpError("NO_CREDENTIALS", f"reading stack {stack_name}: {error}") from error
        except NoRegionError as error:
            raise VlpError("NO_REGION", f"reading stack {stack_name}: give --region (or AWS_REGION)") from error
        except ClientError as error:
            message = error.response.get("Error", {}).get("Message", str(error))
            code = "STACK_NOT_FOUND" if "does not exist" in message else "AWS_ERROR"
            raise VlpError(code, f"stack {stack_name}: {message}") from error
        except BotoCoreError as error:
            raise VlpError("NETWORK_ERROR", f"reading stack {stack_name}: {error}") from error
        outputs = {o["OutputKey"]: o["OutputValue"] for o in (stacks[0].get("Outputs") or [])} if stacks else {}
        if OUTPUT_API_URL not in outputs:
            raise VlpError("STACK_NOT_FOUND", f"stack {stack_name} has no {OUTPUT_API_URL} output (not deployed yet?)")
        if "auth" not in kwargs:
            kwargs["auth"] = (
                "api_key" if OUTPUT_API_KEY_ID in outputs else "cognito" if OUTPUT_USER_POOL_ID in outputs else "iam"
            )
        return cls(outputs[OUTPUT_API_URL], profile=profile, region=region, **kwargs)

    @classmethod
    def local(cls, *, auth: str | None = None, local: LocalMode | None = None, **kwargs: Any) -> VlpClient:
        """Local mode's API with local mode's auth: the mode `make up` runs (run/credentials.json) unless `auth`
        says otherwise, its generated credentials for iam (unless a profile is given), its first key for
        api_key."""
        mode = local or find_local_mode()
        auth = auth or mode.auth
        if auth == "iam" and mode.access_key_id and mode.secret_access_key and not kwargs.get("profile"):
            kwargs.setdefault("credentials", (mode.access_key_id, mode.secret_access_key))
            kwargs.setdefault("region", mode.region)
        if auth == "api_key" and mode.api_keys and not kwargs.get("api_key") and not os.environ.get("VLP_API_KEY"):
            kwargs["api_key"] = mode.api_keys[0]
        return cls(mode.api_url, auth=auth, **kwargs)

    # ---- signing ----
    @staticmethod
    def _botocore_session(profile: str | None) -> Any:
        import botocore.session
        from botocore.exceptions import ProfileNotFound

        try:
            session = botocore.session.Session(profile=profile)
            session.get_scoped_config()  # raises ProfileNotFound now rather than at the first call
        except ProfileNotFound as error:
            raise VlpError("PROFILE_NOT_FOUND", str(error)) from error
        return session

    def signing_region(self) -> str:
        host = urlsplit(self.api_url).hostname or ""
        found = _EXECUTE_API_HOST.search(host)
        if found:
            return found.group(1)
        if self.region:
            return self.region
        configured = self._session_for_signing().get_config_variable("region")
        if configured:
            return str(configured)
        if host in _LOOPBACK:
            return LOCAL_REGION
        raise VlpError("NO_REGION", f"cannot tell the region of {self.api_url}: give --region")

    def _session_for_signing(self) -> Any:
        if self._botocore is None:
            self._botocore = self._botocore_session(self.profile)
        return self._botocore

    def _frozen_credentials(self) -> Any:
        from botocore.credentials import Credentials

        if self._explicit_credentials is not None:
            access, secret, *token = self._explicit_credentials
            return Credentials(access, secret, token[0] if token else None).get_frozen_credentials()
        if self._credentials is None:
            self._credentials = self._session_for_signing().get_credentials()
            if self._credentials is None:
                where = f"profile {self.profile}" if self.profile else "the environment, ~/.aws or an instance role"
                raise VlpError("NO_CREDENTIALS", f"auth iam: no AWS credentials found in {where}")
        return self._credentials.get_frozen_credentials()

    def _auth_headers(self, method: str, url: str, body: bytes | None, headers: dict[str, str]) -> dict[str, str]:
        if self.auth == "api_key":
            return {**headers, "x-api-key": str(self.api_key)}
        if self.auth == "cognito":
            return {**headers, "Authorization": str(self.token)}
        if self.auth != "iam":
            return headers
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        request = AWSRequest(method=method, url=url, data=body or b"", headers=headers)
        SigV4Auth(self._frozen_credentials(), SERVICE, self.signing_region()).add_auth(request)
        return dict(request.headers.items())

    # ---- HTTP ----
    def url(self, path: str) -> str:
        return self.api_url + path

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        headers: dict[str, str] | None = None,
        retries: int | None = None,
    ) -> requests.Response:
        """One API call (signed as `auth` says); 429 and 503 are retried (`retries` times) after Retry-After (or
        a backoff) when that is at most `max_retry_wait` seconds. An error status raises VlpError."""
        url = self.url(path)
        data = json.dumps(body, separators=(",", ":")).encode() if body is not None else None
        attempts = (self.retries if retries is None else retries) + 1
        for attempt in range(attempts):
            base = {"Accept": "application/json", **(headers or {})}
            if data is not None:
                base["Content-Type"] = "application/json"
            signed = self._auth_headers(method, url, data, base)
            try:
                response = self.session.request(method, url, data=data, headers=signed, timeout=self.timeout)
            except requests.Timeout as error:
                raise VlpError("TIMEOUT", f"{method} {url}: no answer in {self.timeout:.0f} s ({error})") from error
            except requests.RequestException as error:
                raise VlpError("NETWORK_ERROR", f"{method} {url}: {error}") from error
            if response.status_code < 400:
                return response
            failure = error_from_response(response)
            if response.status_code in (429, 503) and attempt + 1 < attempts:
                wait = failure.retry_after if failure.retry_after is not None else min(8.0, 2.0**attempt)
                if wait <= self.max_retry_wait:
                    self._sleep(wait + random.uniform(0, 0.25))  # noqa: S311 (jitter, not security)
                    continue
            raise failure
        raise AssertionError("unreachable")

    # ---- uploads ----
    def upload(
        self,
        path_or_bytes: str | Path | bytes | BinaryIO,
        kind: str = "image",
        content_type: str | None = None,
        progress: UploadProgress | None = None,
    ) -> str:
        """POST /v1/uploads, then the presigned POST form to S3 (`progress(sent, total)` as it goes). Returns the
        S3 key to pass as image_key / audio_key."""
        data, name = self._read(path_or_bytes)
        return self._upload(data, name, kind, content_type, progress)

    def _upload(
        self, data: bytes, name: str | None, kind: str, content_type: str | None, progress: UploadProgress | None
    ) -> str:
        if kind not in ("image", "audio"):
            raise VlpError("INVALID_ARGUMENT", f"kind {kind!r}: image or audio")
        allowed = IMAGE_TYPES if kind == "image" else AUDIO_TYPES
        sniffed = sniff(data, name)
        content_type = content_type or (sniffed if sniffed in allowed else None)
        if content_type is None:
            raise VlpError(
                "INVALID_ARGUMENT", f"{name or 'the data'} is not a {kind} type the API takes ({', '.join(allowed)})"
            )
        post = self.request("POST", "/v1/uploads", {"kind": kind, "content_type": content_type}).json()
        fields: list[tuple[str, Any]] = list(post["fields"].items())
        fields.append(
            ("file", (Path(name).name if name else f"upload.{content_type.split('/')[-1]}", data, content_type))
        )
        form, form_type = encode_multipart_formdata(fields)
        try:
            response = self.session.post(
                post["url"],
                data=_ProgressBody(form, progress),
                headers={"Content-Type": form_type, "Content-Length": str(len(form))},
                timeout=max(self.timeout, 60 + len(form) / 200_000),
            )
        except requests.RequestException as error:
            raise VlpError("NETWORK_ERROR", f"upload to {post['url']}: {error}") from error
        if response.status_code >= 300:
            raise _s3_error(response)
        return str(post["key"])

    @staticmethod
    def _read(source: str | Path | bytes | BinaryIO) -> tuple[bytes, str | None]:
        if isinstance(source, bytes | bytearray):
            return bytes(source), None
        if isinstance(source, str | Path):
            path = Path(source).expanduser()
            try:
                return path.read_bytes(), str(path)
            except FileNotFoundError as error:
                raise VlpError("FILE_NOT_FOUND", f"{path}: no such file") from error
            except OSError as error:
                raise VlpError("FILE_NOT_FOUND", f"{path}: {error.strerror or error}") from error
        return source.read(), getattr(source, "name", None)

    def prepare_image(self, image: ImageInput, progress: UploadProgress | None = None) -> dict[str, str]:
        """The request fields for an image: `image_key` for an API key or a large file (uploaded now),
        `image_base64` for a file up to the inline limit. Reuse the result for several requests."""
        if isinstance(image, str) and is_key(image) and not Path(image).exists():
            return {"image_key": image}
        data, name = self._read(image)
        if len(data) <= MAX_INLINE_IMAGE_BYTES:
            return {"image_base64": base64.b64encode(data).decode("ascii")}
        return {"image_key": self._upload(data, name, "image", None, progress)}

    def prepare_audio(self, audio: str | Path | bytes, progress: UploadProgress | None = None) -> dict[str, str]:
        """The request field for audio: always uploaded (`audio_key`), unless it already is a key."""
        if isinstance(audio, str) and is_key(audio) and not Path(audio).exists():
            return {"audio_key": audio}
        return {"audio_key": self.upload(audio, "audio", progress=progress)}

    def analyze_body(
        self,
        image: ImageInput | dict[str, str],
        *,
        text: str | None = None,
        audio: str | Path | bytes | None = None,
        task: str = "auto",
        labels: list[str] | None = None,
        options: dict[str, Any] | None = None,
        history: list[dict[str, Any]] | None = None,
        progress: UploadProgress | None = None,
        **restyle: Unpack[RestyleFields],
    ) -> dict[str, Any]:
        """The request body. `restyle`: RestyleFields; the named options (strength ... seed) join `options`;
        restyle's fields are checked first (vlp_client.restyle.check_request), before any upload."""
        unknown = sorted(set(restyle) - RestyleFields.__optional_keys__)
        if unknown:  # what a signature would refuse: a misspelt field must not be dropped silently
            raise TypeError(f"analyze_body() got an unexpected keyword argument {unknown[0]!r}")
        options = restyle_fields.merge_options(options, {name: restyle.get(name) for name in restyle_fields.OPTIONS})
        style, style_prompt, prompt = restyle.get("style"), restyle.get("style_prompt"), restyle.get("prompt")
        restyle_fields.check_request(task, style, style_prompt, prompt, options)
        body: dict[str, Any] = dict(image) if isinstance(image, dict) else self.prepare_image(image, progress)
        if audio is not None:
            body.update(self.prepare_audio(audio, progress))
        if text is not None:
            body["text"] = text
        if task and task != "auto":
            body["task"] = task
        if labels:
            body["labels"] = list(labels)
        if options:
            body["options"] = dict(options)
        if history:
            body["history"] = list(history)
        for name, value in (("style", style), ("style_prompt", style_prompt), ("prompt", prompt)):
            if value is not None:
                body[name] = value
        return body

    # ---- the routes ----
    def analyze(self, image: ImageInput | dict[str, str], **fields: Unpack[RequestFields]) -> AnalyzeResult:
        """POST /v1/analyze. `image`: a file path, bytes, an API key (uploads/... or inputs/...), or the dict of
        prepare_image; `fields`: those of analyze_body. Images above the inline limit and all audio are uploaded
        first."""
        return AnalyzeResult(self.request("POST", "/v1/analyze", self.analyze_body(image, **fields)).json())

    def submit_job(
        self,
        image: ImageInput | dict[str, str],
        *,
        idempotency_key: str | None = None,
        **fields: Unpack[RequestFields],
    ) -> Job:
        """POST /v1/jobs: the job, queued (`fields`: those of analyze_body). With `idempotency_key`, sending the
        same request again returns the same job."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        body = self.analyze_body(image, **fields)
        return Job.from_view(self.request("POST", "/v1/jobs", body, headers=headers).json())

    def _job(self, job_id: str) -> tuple[Job, float | None]:
        response = self.request("GET", f"/v1/jobs/{quote(job_id, safe='')}", retries=0)
        return Job.from_view(response.json()), _retry_after(response)

    def job(self, job_id: str) -> Job:
        """GET /v1/jobs/{id}."""
        return self._job(job_id)[0]

    def wait(
        self,
        job_id: str,
        progress: JobProgress | None = None,
        timeout: float = 900,
        *,
        interval: float = 0.5,
        max_interval: float = 5.0,
    ) -> Job:
        """Poll the job until it succeeds or fails (the final Job; a failed one is returned, not raised: see
        Job.raise_for_error). Backoff from `interval` to `max_interval`, longer when the API says Retry-After
        (also on 429/503 and network errors). `progress(job)` after every poll. WAIT_TIMEOUT after `timeout`."""
        deadline = time.monotonic() + timeout
        delay = interval
        last: Job | None = None
        while True:
            retry_after: float | None = None
            try:
                last, retry_after = self._job(job_id)
            except VlpError as error:
                if error.status not in (429, 502, 503, 504) and error.code not in ("NETWORK_ERROR", "TIMEOUT"):
                    raise
                retry_after = error.retry_after
            else:
                if progress is not None:
                    progress(last)
                if last.done:
                    return last
            pause = max(delay, retry_after or 0.0)
            if time.monotonic() + pause > deadline:
                status = last.status if last else "unknown"
                raise VlpError(
                    "WAIT_TIMEOUT", f"job {job_id} is still {status} after {timeout:.0f} s", request_id=job_id
                )
            self._sleep(pause)
            delay = min(max_interval, delay * 1.5)

    def restyle(
        self,
        image: ImageInput | dict[str, str],
        *,
        options: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        progress: UploadProgress | None = None,
        job_progress: JobProgress | None = None,
        timeout: float = 900,
        **fields: Unpack[RestyleFields],
    ) -> RestyleResult:
        """Task restyle through POST /v1/jobs: the image re-created in a preset `style` (vlp_client.restyle.STYLES)
        or a `style_prompt` of one's own (exactly one of them). `prompt`: the image's description (else the
        service interrogates it); `strength` 0.1..1 (how far from the original), `steps` 1..50,
        `guidance_scale` 0..20, `negative_prompt` (added to the preset's), `seed` 0..2**32-1 (None: the service
        draws one and reports it). Waits for the job (`job_progress(job)` after every poll, WAIT_TIMEOUT after
        `timeout`); a failed job raises its VlpError. `restyled_png(result)` fetches the picture."""
        job = self.submit_job(
            image,
            idempotency_key=idempotency_key,
            task=restyle_fields.TASK,
            options=options,
            progress=progress,
            **fields,
        )
        if job.done:  # an idempotent resubmission can answer with the finished job
            if job.status == "succeeded" and job.result is None:
                job = self.job(job.job_id)
        else:
            job = self.wait(job.job_id, progress=job_progress, timeout=timeout)
        return self.restyle_result(job)

    @staticmethod
    def restyle_result(job: Job) -> RestyleResult:
        """A finished restyle job's result (a failed job raises its error; one without a restyled PNG,
        INVALID_RESPONSE)."""
        job.raise_for_error()
        if job.result is None:
            raise VlpError(
                "INVALID_RESPONSE", f"job {job.job_id} is {job.status}, with no result", request_id=job.job_id
            )
        return RestyleResult(job.result.raw)

    # ---- results to files ----
    def restyled_png(self, result: AnalyzeResult | Job) -> bytes:
        """The restyled picture of a restyle result (or job), fetched from its presigned URL: PNG bytes."""
        if isinstance(result, Job):
            result = self.restyle_result(result)
        found = result.restyle
        if found is None or not found.restyled.url:
            raise VlpError("INVALID_ARGUMENT", "the result has no restyled picture (not a restyle result?)")
        data = self._get(found.restyled.url, restyle_fields.OUTPUT_FILE)
        if not data.startswith(b"\x89PNG\r\n\x1a\n"):
            raise VlpError("DOWNLOAD_FAILED", f"download {restyle_fields.OUTPUT_FILE}: the answer is not a PNG")
        return data

    def save_restyled(self, result: AnalyzeResult | Job, out_dir: str | Path) -> Path:
        """Write the restyled picture to DIR/restyled.png (DIR made when missing); returns the path."""
        data = self.restyled_png(result)
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        target = out / restyle_fields.OUTPUT_FILE
        target.write_bytes(data)
        return target

    def download(self, result: AnalyzeResult | Job, out_dir: str | Path) -> list[Path]:
        """Write DIR/result.json and, for segment, DIR/overlay.png (when the service made one) and
        DIR/mask-<i>.png (i: the detection's index), for restyle DIR/restyled.png, from their presigned URLs.
        Returns the files written."""
        if isinstance(result, Job):
            if result.result is None:
                raise VlpError("INVALID_ARGUMENT", f"job {result.job_id} has no result ({result.status})")
            result = result.result
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        written = [out / "result.json"]
        written[0].write_text(json.dumps(result.raw, indent=2) + "\n")
        overlay = result.overlay
        if overlay and overlay.get("url"):
            written.append(self._fetch(str(overlay["url"]), out / "overlay.png"))
        for mask in result.masks:
            if mask.url:
                written.append(self._fetch(mask.url, out / f"mask-{mask.index}.png"))
        restyled = result.restyle
        if restyled is not None and restyled.restyled.url:
            written.append(self.save_restyled(result, out))
        return written

    def _get(self, url: str, name: str) -> bytes:
        try:
            response = self.session.get(url, timeout=self.timeout)
        except requests.RequestException as error:
            raise VlpError("NETWORK_ERROR", f"download {name}: {error}") from error
        if response.status_code != 200:
            raise VlpError(
                "DOWNLOAD_FAILED",
                f"download {name}: HTTP {response.status_code} (presigned URLs expire: fetch the job again)",
                status=response.status_code,
            )
        return response.content

    def _fetch(self, url: str, target: Path) -> Path:
        target.write_bytes(self._get(url, target.name))
        return target
