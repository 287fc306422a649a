/* The httpd and APR API surface the module binds to (bindgen input). */
#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <ap_mpm.h>
#include <ap_regex.h>
#include <util_script.h>
#include <util_md5.h>
#include <mpm_common.h>
#include <apr_buckets.h>
#include <apr_strings.h>
#include <apr_tables.h>
#include <apr_file_io.h>
#include <apr_portable.h>
