{#-
    Post-hook of an incremental model built from raw files (int_events_validated):
    where a file the rows name is known now under another path or other times
    (find_new_raw_files: moved, copied without its times, touched), the rows and their
    other_source_files take the file's path and times as listed, so that the next
    rerun finds it by its times and need not read it again. Nothing on a build that
    moved nothing.
-#}
{% macro record_raw_file_moves(listing) %}
    {%- if not execute -%}{{ return('') }}{%- endif -%}
    {%- set moved = find_new_raw_files(this, listing)['moved'] -%}
    {%- if not moved -%}{{ return('') }}{%- endif -%}
    {%- set values = [] -%}
    {%- set entries = [] -%}
    {%- for move in moved -%}
        {%- set file = move['file'] -%}
        {%- set record = "{'source_file': " ~ sql_string_list([move['to']])
            ~ ", 'source_file_bytes': " ~ file['bytes'] ~ "::bigint"
            ~ ", 'source_file_modified_at': cast(" ~ sql_string_list([file['modified_at']])
            ~ " as timestamptz), 'source_file_hash': " ~ sql_string_list([file['hash']]) ~ "}" -%}
        {%- do values.append("(" ~ sql_string_list([move['from'], file['hash']]) ~ ", " ~ record ~ ")") -%}
        {%- do entries.append(sql_string_list([move['from'] ~ '|' ~ file['hash']]) ~ ": " ~ record) -%}
    {%- endfor -%}
    update {{ this }} as validated
    set
        source_file = moves.listed.source_file,
        source_file_bytes = moves.listed.source_file_bytes,
        source_file_modified_at = moves.listed.source_file_modified_at
    from (values {{ values | join(', ') }}) as moves (source_file, source_file_hash, listed)
    where
        validated.source_file = moves.source_file
        and validated.source_file_hash = moves.source_file_hash;

    update {{ this }}
    set other_source_files = list_transform(
        other_source_files,
        lambda held: coalesce(
            map { {{- entries | join(', ') -}} }[held.source_file || '|' || held.source_file_hash],
            held
        )
    )
    where list_has_any(
        list_transform(other_source_files, lambda held: held.source_file),
        [{{ sql_string_list(moved | map(attribute='from') | list) }}]
    )
{% endmacro %}
