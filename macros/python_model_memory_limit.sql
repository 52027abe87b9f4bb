{#-
    Hooks around the Python models (training, scoring, explaining). DuckDB keeps the
    blocks earlier SQL read cached up to its memory limit, and in one `dbt build`
    process a Python model's own memory (LightGBM's matrix, TreeSHAP) comes on top:
    at 100M events and a 5 GB limit the build peaked at 7.49 GiB (bench/README.md).
    Lowering the limit makes DuckDB evict what it cached; the post-hook sets the
    profile's limit again, as dbt-duckdb sets it on each connection. A profile limit
    already at or below var('python_model_memory_limit') is left as it is.
-#}
{% macro lower_memory_limit_for_python() %}
    {{- return(memory_limit_lowering(_profile_memory_limit(), var('python_model_memory_limit'))) -}}
{% endmacro %}

{% macro restore_memory_limit_after_python() %}
    {{- return(memory_limit_restoring(_profile_memory_limit())) -}}
{% endmacro %}

{#- The statement that lowers a profile's limit (none: DuckDB's default) to `lowered`;
    empty where the profile's is already no higher. -#}
{% macro memory_limit_lowering(profile, lowered) %}
    {%- set lowered_bytes = _memory_bytes(lowered) -%}
    {%- if lowered_bytes is none -%}
        {{ exceptions.raise_compiler_error(
            "var python_model_memory_limit: " ~ lowered ~ " is not a memory size (e.g. 1GB)") }}
    {%- endif -%}
    {%- set profile_bytes = _memory_bytes(profile) if profile else none -%}
    {%- if profile_bytes is none or lowered_bytes < profile_bytes -%}
        {{- return("set memory_limit = '" ~ lowered ~ "'") -}}
    {%- endif -%}
    {{- return('') -}}
{% endmacro %}

{#- The statement that sets a profile's limit again (none: DuckDB's default). -#}
{% macro memory_limit_restoring(profile) %}
    {{- return("set memory_limit = '" ~ profile ~ "'" if profile else 'reset memory_limit') -}}
{% endmacro %}

{% macro _profile_memory_limit() %}
    {{- return((target.get('settings') or {}).get('memory_limit')) -}}
{% endmacro %}

{#- Bytes of a DuckDB memory size ('5GB', '4.6 GiB', '512MB'); none if it is not one. -#}
{% macro _memory_bytes(size) %}
    {%- set match = modules.re.match(
        '^ *([0-9]+([.][0-9]+)?) *(b|bytes|[kmgt]b?|[kmgt]ib)? *$', (size | string) | lower) -%}
    {%- if not match -%}{{ return(none) }}{%- endif -%}
    {%- set unit = match.group(3) or 'b' -%}
    {%- set base = 1024 if unit.endswith('ib') else 1000 -%}
    {{- return(match.group(1) | float * base ** 'bkmgt'.index(unit[0])) -}}
{% endmacro %}
