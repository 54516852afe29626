from decimal import Decimal

from django import forms


class TransferForm(forms.Form):
    amount = forms.DecimalField(
        label="Amount (EUR)", min_value=Decimal("0.01"), max_digits=12, decimal_places=2
    )
    payee = forms.CharField(max_length=100)
