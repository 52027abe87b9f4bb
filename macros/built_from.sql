{#-
    A cutoff's fingerprint: a hash of `inputs` (an expression over the stamps of
    what the cutoff is built from) and of the model's own SQL file
    (macros/select_cutoffs_to_build.sql).
-#}
{% macro built_from(inputs) -%}
    hash({{ inputs }}, '{{ model.checksum.checksum }}')
{%- endmacro %}
