with

source as (

    select * from {{ list_raw_files('events') }}

),

listed as (

    select
        source_file,
        source_file_bytes,
        source_file_modified_at,
        source_file_hash
    from source

)

select * from listed
