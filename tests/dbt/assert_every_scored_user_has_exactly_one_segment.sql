{#-
    Every scored user has exactly one row in customer_segments, and its segment is
    one of seeds/segment_rules.csv. Each row returned is a user that breaks it: no
    row (missing), several, or a segment no rule names (null where no rule held:
    keep a last rule `true` in the seed).
-#}
with

purchasing_power_scores as (

    select user_id
    from {{ ref('purchasing_power_scores') }}

),

customer_segments as (

    select
        user_id,
        segment
    from {{ ref('customer_segments') }}

),

segment_rules as (

    select segment
    from {{ ref('segment_rules') }}

),

segments_counted as (

    select
        coalesce(purchasing_power_scores.user_id, customer_segments.user_id) as user_id,
        count(customer_segments.user_id) as segment_rows,
        count(segment_rules.segment) as known_segment_rows,
        bool_or(purchasing_power_scores.user_id is null) as is_unscored
    from purchasing_power_scores
    full outer join customer_segments
        on purchasing_power_scores.user_id = customer_segments.user_id
    left join segment_rules
        on customer_segments.segment = segment_rules.segment
    group by coalesce(purchasing_power_scores.user_id, customer_segments.user_id)

)

select * from segments_counted
where segment_rows != 1 or known_segment_rows != 1 or is_unscored
