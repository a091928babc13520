"""Keys of FID reference statistics, so protocols that compute them the same way share one file.

Two protocols need the same reference statistics exactly when ``Protocol.reference_settings``
(geometry, resize rule, extractor, reference split and listing, dropped remainder) are equal for
an extractor. The key ``<extractor>-<hash of those settings>`` names the pipeline's statistics file
(``reports/refstats/<key>.npz``): the ``refstats`` stage makes one file per distinct key and every
protocol that uses it reads the same file (``pgpis evaluate --refstats-dir``).
"""

from __future__ import annotations

from pathlib import Path

from bench.metrics.protocols import Protocol, get_protocol


def reference_key(protocol: Protocol, extractor: str) -> str:
    """``<extractor>-<8 hex>``: equal for two protocols exactly when their statistics are equal."""
    return f"{extractor}-{protocol.reference_settings_hash(extractor)}"


def distinct_references(protocol_names: list[str]) -> dict[str, dict[str, str | list[str]]]:
    """key -> {protocol: the first protocol using it, extractor, used_by: every protocol using it},
    in the order the protocols are given (the ``refstats`` section of params.yaml)."""
    out: dict[str, dict[str, str | list[str]]] = {}
    for name in protocol_names:
        protocol = get_protocol(name)
        vectors = protocol.vector_extractors
        for extractor in protocol.feature_extractors:
            key = reference_key(protocol, extractor)
            entry = out.setdefault(key, {"protocol": name, "extractor": extractor, "used_by": []})
            entry["used_by"].append(name)  # type: ignore[union-attr]
            if (
                extractor in vectors
                and extractor not in get_protocol(str(entry["protocol"])).vector_extractors
            ):
                # the file is made under a protocol that keeps every feature vector (KID, PRDC need them);
                # its statistics are the same, so the others read it unchanged
                entry["protocol"] = name
    return out


def refstats_files(protocol: Protocol, folder: Path) -> list[Path]:
    """The statistics files of ``protocol`` in a folder of ``<key>.npz`` files (one per extractor)."""
    return [folder / f"{reference_key(protocol, e)}.npz" for e in protocol.feature_extractors]


def params_section(protocol_names: list[str]) -> str:
    """The ``refstats`` section of params.yaml for these protocols, as YAML lines."""
    lines = ["refstats:"]
    for key, entry in distinct_references(protocol_names).items():
        lines.append(f"  {key}: {{protocol: {entry['protocol']}, extractor: {entry['extractor']}}}")
    return "\n".join(lines)
