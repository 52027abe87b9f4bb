{#-
    For an incremental model built from raw files: compares the files listed now (a
    relation like stg_raw__event_files) with the files the built model's rows name, by
    what each file is known by (source_file_hash, fingerprint_raw_files). The rows name
    their file (source_file and its source_file_* columns) and, where copies of a row
    from other files were collapsed into it, those files too (other_source_files: a file
    of copies only has no row of its own).

    A listed file is known when a built file has its path and its hash (a touch or a
    copy without its times changes neither), or when a built file that is no longer
    listed had its hash (the file or raw_path moved); each built file stands for one
    listed file. A built file whose hash no listed file has fails the build, naming it
    (changed where its path is still listed, removed otherwise): its rows are in the
    model, and only `dbt build --full-refresh` can take them out again. Every other
    listed file is new.

    Only files whose path, size or modification time no built row records are read
    (hashed). Returns {new_files: [path], files: a subquery of every listed file with its
    source_file_* columns, moved: [{from, to, file: {hash, bytes, modified_at}}] for known files
    whose path or times the rows record otherwise (record_raw_file_moves updates them)}.
-#}
{% macro find_new_raw_files(built, listing) %}
    {%- set built_files = "(select source_file, source_file_bytes, source_file_modified_at,"
        ~ " source_file_hash from " ~ built ~ " where source_file is not null"
        ~ " union select unnest(other_source_files, recursive := true) from " ~ built
        ~ " where other_source_files is not null)" -%}
    {%- set built_rows = run_query(
        "select source_file, source_file_hash, source_file_bytes,"
        ~ " cast(source_file_modified_at as varchar) from " ~ built_files
        ~ " order by source_file, source_file_hash"
    ).rows -%}
    {#- the listed files, with the hash a built row records for the same path and times -#}
    {%- set listed_rows = run_query(
        "select listed.source_file, any_value(built.source_file_hash),"
        ~ " any_value(listed.source_file_bytes),"
        ~ " cast(any_value(listed.source_file_modified_at) as varchar)"
        ~ " from " ~ listing ~ " as listed left join " ~ built_files ~ " as built"
        ~ " on listed.source_file = built.source_file"
        ~ " and listed.source_file_bytes = built.source_file_bytes"
        ~ " and listed.source_file_modified_at = built.source_file_modified_at"
        ~ " group by listed.source_file order by listed.source_file"
    ).rows -%}
    {%- set unhashed = listed_rows | selectattr(1, 'none') | map(attribute=0) | list -%}
    {%- set hashes = {} -%}
    {%- for row in listed_rows if row[1] is not none -%}
        {%- do hashes.update({row[0]: row[1]}) -%}
    {%- endfor -%}
    {%- if unhashed -%}
        {%- for row in run_query(
            "select source_file, source_file_hash from " ~ fingerprint_raw_files(unhashed)
        ).rows -%}
            {%- do hashes.update({row[0]: row[1]}) -%}
        {%- endfor -%}
    {%- endif -%}

    {%- set listed = {} -%}
    {%- for row in listed_rows -%}
        {%- do listed.update({row[0]: {
            'hash': hashes[row[0]], 'bytes': row[2], 'modified_at': row[3]
        }}) -%}
    {%- endfor -%}
    {%- set built_by_path = {} -%}
    {%- for row in built_rows -%}
        {%- do built_by_path.setdefault(row[0], []).append(
            {'hash': row[1], 'bytes': row[2], 'modified_at': row[3]}
        ) -%}
    {%- endfor -%}

    {%- set known = {} -%}
    {%- set moved = [] -%}
    {%- set stale = [] -%}
    {#- first, files still at their path: known where the hash is the same -#}
    {%- for path, records in built_by_path.items() if path in listed -%}
        {%- if listed[path]['hash'] in records | map(attribute='hash') | list -%}
            {%- do known.update({path: path}) -%}
            {%- if records | selectattr('hash', 'equalto', listed[path]['hash'])
                | selectattr('bytes', 'equalto', listed[path]['bytes'])
                | selectattr('modified_at', 'equalto', listed[path]['modified_at'])
                | list | length == 0 -%}
                {%- do moved.append({'from': path, 'to': path, 'file': listed[path]}) -%}
            {%- endif -%}
        {%- else -%}
            {%- do stale.append(path ~ ' (changed)') -%}
        {%- endif -%}
    {%- endfor -%}
    {#- then files no longer at their path: each to one listed file of its hash not
        already taken -#}
    {%- for path, records in built_by_path.items() if path not in listed -%}
        {%- set hash = records[0]['hash'] -%}
        {%- set candidates = listed | dictsort | selectattr('1.hash', 'equalto', hash)
            | map(attribute=0)
            | reject('in', built_by_path) | reject('in', known) | list -%}
        {%- if candidates -%}
            {%- do known.update({candidates[0]: path}) -%}
            {%- do moved.append({'from': path, 'to': candidates[0], 'file': listed[candidates[0]]}) -%}
        {%- else -%}
            {%- do stale.append(path ~ ' (removed)') -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if stale -%}
        {{ exceptions.raise_compiler_error(
            built ~ " was built from raw files that are gone or changed since: "
            ~ (stale[:5] | join(', ')) ~ (' and ' ~ (stale | length - 5) ~ ' more' if stale | length > 5 else '')
            ~ ". A file is known by its content: a new file is added incrementally, and a"
            ~ " copied, touched or moved one is the same file, but a changed or removed file"
            ~ " needs `dbt build --full-refresh`."
        ) }}
    {%- endif -%}

    {%- set new_files = listed | reject('in', known) | list -%}
    {%- set values = [] -%}
    {%- for path, file in listed | dictsort -%}
        {%- do values.append(
            "(" ~ sql_string_list([path]) ~ ", " ~ file['bytes'] ~ "::bigint, cast("
            ~ sql_string_list([file['modified_at']]) ~ " as timestamptz), "
            ~ sql_string_list([file['hash']]) ~ ")"
        ) -%}
    {%- endfor -%}
    {%- set files = "(select * from (values " ~ values | join(", ") ~ ") as listed_files"
        ~ " (source_file, source_file_bytes, source_file_modified_at, source_file_hash))"
        if values else fingerprint_raw_files([]) -%}
    {{ return({'new_files': new_files, 'files': files, 'moved': moved}) }}
{% endmacro %}
