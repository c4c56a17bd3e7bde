/*-------------------------------------------------------------------------
 *
 * labels.h
 *	  The one list of the labels of the payout enum types.
 *
 * Each list names the labels in the order of the CREATE TYPE statements of
 * the install scripts, which is their position ("index") in C.  status.h
 * expands them into the index constants, status.c into the tables of what
 * each label means; nothing else spells a label.  Never reorder a list:
 * released install scripts created the types in this order.
 *
 *	PAYOUT_STATUS(name, final, description)
 *	PAYOUT_RESOLUTION(name, group, description)
 *
 * src/labels.h
 *
 *-------------------------------------------------------------------------
 */

/* no include guard: included once per expansion, like kwlist.h */

#ifdef PAYOUT_STATUS
PAYOUT_STATUS(CREATE_FAILED, true, "Payout was not created (used in the payout request section).")
PAYOUT_STATUS(CREATED, false, "Payout was successfully created.")
PAYOUT_STATUS(READY, false, "Payout is ready to be processed: it waits for a processing command (autoprocess is TRUE) or for manual processing (autoprocess is FALSE).")
PAYOUT_STATUS(TERMINATED, true, "User refused to enter additional information and finished the payout.")
PAYOUT_STATUS(EXPIRED, true, "Payout operation has expired.")
PAYOUT_STATUS(INVOKING, false, "Payout is being registered by the payment provider.")
PAYOUT_STATUS(INVOKE_FAILED, true, "Failed to register the payout on the payment provider's side.")
PAYOUT_STATUS(PROCESSING, false, "Payout is being processed by the payment provider.")
PAYOUT_STATUS(PENDING, false, "Payout was created by the payment provider and is waiting for a resolution.")
PAYOUT_STATUS(PROCESSED, false, "Payout was successfully processed.")
PAYOUT_STATUS(PARTIALLY_PROCESSED, false, "Payout was successfully processed for part of the amount.")
PAYOUT_STATUS(PROCESS_FAILED, true, "Payment provider could not process the transaction.")
PAYOUT_STATUS(CANCELLING, false, "Payout is being cancelled.")
PAYOUT_STATUS(CANCELLED, true, "Payout was cancelled.")
PAYOUT_STATUS(CANCEL_FAILED, true, "Payout cancellation failed.")
PAYOUT_STATUS(REVOKING, false, "Payout is being revoked.")
PAYOUT_STATUS(REVOKED, true, "Payout was revoked.")
PAYOUT_STATUS(REVOKE_FAILED, true, "Payout revocation failed.")
#endif

#ifdef PAYOUT_RESOLUTION
PAYOUT_RESOLUTION(OK, OK, "Request completed successfully.")
PAYOUT_RESOLUTION(CONNECTION_ERROR, ERROR, "Transport-level error (no HTTP 200), for example an invalid SSL certificate or an HTTP 5xx, 4xx or 3xx answer.")
PAYOUT_RESOLUTION(PROVIDER_INTERNAL_ERROR, ERROR, "Error on the payment provider's side, for example 500 Internal Server Error.")
PAYOUT_RESOLUTION(CONNECTION_TIMEOUT_ERROR, ERROR, "Request time limit exceeded.")
PAYOUT_RESOLUTION(GENERAL_ERROR, ERROR, "General non-critical error.")
PAYOUT_RESOLUTION(UNKNOWN, ERROR, "Any other resolution missing in the mapping.")
PAYOUT_RESOLUTION(INVALID_DETAILS, FATAL_ERROR, "Invalid payout details.")
PAYOUT_RESOLUTION(INVALID_REQUEST, FATAL_ERROR, "The protocol may have changed or the integration is outdated.")
PAYOUT_RESOLUTION(REQUEST_ERROR, FATAL_ERROR, "The payment provider failed to process the request: invalid data was passed.")
PAYOUT_RESOLUTION(INVALID_AMOUNT, FATAL_ERROR, "Invalid payout amount: amount format or route limits violation.")
PAYOUT_RESOLUTION(INVALID_METHOD, FATAL_ERROR, "Invalid payout method.")
PAYOUT_RESOLUTION(INVALID_CREDENTIALS, FATAL_ERROR, "Invalid authentication data.")
PAYOUT_RESOLUTION(FORBIDDEN_IP, FATAL_ERROR, "Forbidden IP: the gateway's IP addresses may be missing from the provider's whitelist.")
PAYOUT_RESOLUTION(SIGNATURE_ERROR, FATAL_ERROR, "Signature verification error: the key may have changed or be outdated.")
PAYOUT_RESOLUTION(DUPLICATED_ID, FATAL_ERROR, "Operation ID already exists.")
PAYOUT_RESOLUTION(INSUFFICIENT_FUNDS, FATAL_ERROR, "Insufficient funds for the payout.")
PAYOUT_RESOLUTION(ANTIFRAUD_ERROR, FATAL_ERROR, "Payout did not pass the fraud check.")
PAYOUT_RESOLUTION(DECLINED_ERROR, FATAL_ERROR, "Operation rejected by the provider for an unknown reason.")
PAYOUT_RESOLUTION(RECIPIENT_NOT_FOUND, FATAL_ERROR, "Payout recipient not found.")
PAYOUT_RESOLUTION(INVALID_RECIPIENT, FATAL_ERROR, "Payout recipient is invalid or inaccessible.")
PAYOUT_RESOLUTION(LIMIT_VIOLATION, FATAL_ERROR, "Payout limits violation.")
PAYOUT_RESOLUTION(INTERNAL_ERROR, FATAL_ERROR, "System error: internal error of the payment gateway.")
PAYOUT_RESOLUTION(ACCESS_ERROR, FATAL_ERROR, "Not enough permissions to perform the operation: check the configuration at the payment provider.")
PAYOUT_RESOLUTION(ACCESS_DENIED, FATAL_ERROR, "User is not authorized to perform these actions.")
PAYOUT_RESOLUTION(GENERAL_FATAL_ERROR, FATAL_ERROR, "Critical error: further processing of the operation is meaningless.")
PAYOUT_RESOLUTION(OPERATION_EXPIRED, FATAL_ERROR, "Operation has expired.")
PAYOUT_RESOLUTION(PROCESSING_ERROR, FATAL_ERROR, "Processing error.")
#endif
