"""The pydantic request and response models of every route, so ``/openapi.json`` and ``/docs``
describe the API. ``/v1/...`` follows OpenAI's embeddings API exactly.

    >>> EmbeddingsRequest(input="hello").encoding_format
    'float'
    >>> PredictRequest(inputs=["Apple is great."], tasks=["sentiment"]).min_score is None
    True
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "EmbedRequest",
    "EmbedResponse",
    "EmbeddingsRequest",
    "EmbeddingsResponse",
    "HealthResponse",
    "ModelsResponse",
    "PredictRequest",
    "PredictResponse",
    "SearchRequest",
    "SearchResponse",
    "SimilarityRequest",
    "TokenizeRequest",
    "TokenizeResponse",
]

Texts = str | list[str]


class _Strict(BaseModel):
    """Own routes refuse unknown fields, so a typo ("input" for "inputs") is a 422 naming it."""

    model_config = ConfigDict(extra="forbid")


# -- OpenAI: /v1/embeddings, /v1/models ----------------------------------------------------------
class EmbeddingsRequest(BaseModel):
    """OpenAI's embeddings request."""

    input: Texts = Field(description="A text or a list of texts.")
    model: str | None = Field(None, description="The served model name (GET /v1/models).")
    encoding_format: Literal["float", "base64"] = Field(
        "float", description="float: lists of numbers; base64: little-endian float32 bytes, base64-encoded."
    )
    dimensions: int | None = Field(None, ge=1, description="Keep the first N dimensions, then renormalise.")
    user: str | None = None


class EmbeddingObject(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class EmbeddingsUsage(BaseModel):
    prompt_tokens: int = Field(description="Tokens the model read (word pieces and special tokens).")
    total_tokens: int


class EmbeddingsResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[EmbeddingObject]
    model: str
    usage: EmbeddingsUsage


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelsResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


# -- TEI-like routes ------------------------------------------------------------------------------
class Usage(BaseModel):
    texts: int
    tokens: int = Field(description="Tokens the model read (word pieces and special tokens).")


class EmbedRequest(_Strict):
    inputs: Texts
    normalize: bool = Field(True, description="Unit-length vectors (dot product == cosine).")
    truncate: bool = Field(True, description="false: a text past the model window is a 422 instead.")
    dimensions: int | None = Field(None, ge=1, description="Keep the first N dimensions (renormalised).")


class EmbedResponse(BaseModel):
    embeddings: list[list[float]]
    dimensions: int
    truncated: list[int] = Field(description="Indices of the texts cut at the model window.")
    usage: Usage


class PredictRequest(_Strict):
    inputs: Texts
    tasks: list[str] | None = Field(
        None, min_length=1, description="Heads to run [default: all]; GET /info lists them."
    )
    min_score: float | None = Field(
        None, ge=0.0, le=1.0, description="A sentence head abstains (label null) below this top probability."
    )
    truncate: bool = True
    labels: str | list[str] | None = Field(
        None,
        description="Zero-shot labels ('name' or 'name: description'; 'other': none of them), answered "
        "as zero_shot; with labels, heads run only if tasks names them.",
    )


class SentencePrediction(BaseModel):
    label: str | list[str] | None
    score: float | list[float]
    probabilities: dict[str, float]


class Entity(BaseModel):
    text: str
    label: str
    start: int = Field(description="Character offset in the input: text == input[start:end].")
    end: int
    score: float


class PredictResponse(BaseModel):
    predictions: list[dict[str, SentencePrediction | list[Entity]]] = Field(
        description="Per text, what MultiTaskModel.predict returns: {task: prediction}."
    )
    truncated: list[int]
    usage: Usage


class TokenizeRequest(_Strict):
    inputs: Texts


class Token(BaseModel):
    id: int
    text: str = Field(description="The word piece as the tokenizer writes it.")
    start: int = Field(description="Character span in the input ((0, 0) for special tokens).")
    end: int
    special: bool


class TokenizeResponse(BaseModel):
    tokens: list[list[Token]] = Field(description="Per text, the pieces the model reads (within its window).")
    lengths: list[int] = Field(description="Per text, its word pieces without special tokens or window.")
    window: int
    truncated: list[int]


class SimilarityRequest(_Strict):
    a: list[str] = Field(min_length=1)
    b: list[str] = Field(min_length=1)
    mode: Literal["best", "pairwise", "matrix"] = "best"
    top_k: int = Field(1, ge=1, description="Matches per text of a (best mode).")


class SearchRequest(_Strict):
    queries: Texts
    top_k: int = Field(10, ge=1, le=1000)


class SearchHit(BaseModel):
    text: str
    line: int
    score: float
    source: str
    ids: dict[str, bool | int | float | str | None] = Field(
        default_factory=dict,
        description="The id columns of the text's row, as the index keeps them (stmt embed --id-column): "
        '{"post_id": 17}; empty for an index built without ids.',
    )


class SearchResponse(BaseModel):
    results: list[list[SearchHit]]


class HealthResponse(BaseModel):
    status: Literal["ok", "loading", "failed"]
    detail: str | None = None


Info = dict[str, Any]
