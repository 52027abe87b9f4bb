{#-
    on-run-end: where the test rejected_share_within_bound warned, one warning line in
    dbt's output per file or day above its bound, naming it with its rejected share and
    most frequent reason (dbt itself only counts a test's failing rows). Runs nothing:
    it reads the test's own failing rows.
-#}
{% macro warn_rejected_shares_above_bound(results) %}
    {%- if execute -%}
        {%- for result in results
            if result.node.name == 'rejected_share_within_bound' and result.status == 'warn' -%}
            {%- set above = run_query(
                "select scope, coalesce(source_file, cast(event_date as varchar)) as name,"
                ~ " rows_in, rejected_share, top_reject_reason, max_rejected_share"
                ~ " from (" ~ result.node.compiled_code ~ ") as failing"
                ~ " order by scope desc, name"
            ) -%}
            {%- for scope, name, rows_in, share, reason, bound in above.rows -%}
                {%- do exceptions.warn(
                    "Data quality: " ~ scope ~ " " ~ name ~ ": " ~ '%.1f' | format(share * 100)
                    ~ "% of its " ~ rows_in ~ " raw rows rejected, most often " ~ reason
                    ~ " (bound " ~ '%g' | format(bound * 100) ~ "%, seeds/data_quality_thresholds.csv;"
                    ~ " the rows are in marts.rejected_events)"
                ) -%}
            {%- endfor -%}
        {%- endfor -%}
    {%- endif -%}
{% endmacro %}
