/** Dead-letter messages: every shape in the queue gives back the original EventBridge event. */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../../lib/core/errors';
import { isInvocationRecord, originalEvent } from '../../lib/events/dead-letter';

const event = JSON.parse(
  readFileSync(path.join(__dirname, '..', 'fixtures', 'events', 'ecr-push-tag.json'), 'utf8'),
);

describe('originalEvent', () => {
  it('returns the body itself when it is the event (failure function, EventBridge target DLQ)', () => {
    expect(originalEvent(JSON.stringify(event))).toEqual(event);
  });

  it("returns the requestPayload of a Lambda invocation record (the failure function's own DLQ)", () => {
    const record = {
      version: '1.0',
      timestamp: '2026-11-23T10:00:00.000Z',
      requestContext: {
        requestId: 'e2a4c0f2-7f0c-4b8c-9d55-0c7f9a1b2c3d',
        functionArn: 'arn:aws:lambda:us-east-1:123456789012:function:signet-sign:$LATEST',
        condition: 'RetriesExhausted',
        approximateInvokeCount: 3,
      },
      requestPayload: event,
      responseContext: { statusCode: 200, executedVersion: '$LATEST', functionError: 'Unhandled' },
      responsePayload: { errorType: 'SigningFailedError', errorMessage: 'signing failed' },
    };
    expect(isInvocationRecord(record)).toBe(true);
    expect(originalEvent(JSON.stringify(record))).toEqual(event);
  });

  it('does not take an ECR event for an invocation record', () => {
    expect(isInvocationRecord(event)).toBe(false);
    expect(isInvocationRecord(null)).toBe(false);
  });

  describe('when the body is not JSON', () => {
    it('throws EVENT_INVALID naming the body', () => {
      expect(() => originalEvent('{"source": "aws.ecr"')).toThrowWithCode(InputError, 'EVENT_INVALID');
      expect(() => originalEvent('   ')).toThrowWithCode(InputError, 'EVENT_INVALID');
      expect(() => originalEvent('not json')).toThrow(expect.objectContaining({ field: 'body' }));
    });
  });
});
